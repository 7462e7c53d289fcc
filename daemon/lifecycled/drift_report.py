"""A self-contained HTML report of one drift check, for people: the verdict and recommendations on
top, then each feature (worst first) with reference against current bin shares as overlaid bars,
the two cumulative distributions at the bin edges with D for numeric features, its statistics
and, for a feature that could not be judged, the reason. The charts are inline SVG drawn by
matplotlib (the ``report`` extra); the page loads nothing from the network and runs no script."""

from __future__ import annotations

import html
import io
from collections.abc import Mapping, Sequence
from typing import Any

from lifecycled.errors import InputError

RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}
COLOURS = {"reference": "#4c72b0", "current": "#dd8452"}
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem;
color:#1d1d1f;max-width:72rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
.verdict{padding:.8rem 1rem;border-radius:.4rem;background:#f2f2f7}
.sev-critical{color:#b00020}.sev-high{color:#c75000}.sev-medium{color:#8a6d00}
.sev-unknown{color:#6e6e73}.sev-low{color:#1b7f3b}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.2rem .6rem;text-align:left;
border-bottom:1px solid #e5e5ea}th{font-weight:600}.charts{display:flex;flex-wrap:wrap;gap:1rem}
.feature{border-top:1px solid #d2d2d7;padding-top:.5rem}.reason{color:#6e6e73}
"""


class Figures:
    """Makes matplotlib figures without pyplot (no global state: safe in the listener's threads)."""

    def __init__(self) -> None:
        try:
            from matplotlib.figure import Figure
        except ImportError as exc:
            raise ReportUnavailable("the HTML report needs matplotlib: "
                                    "pip install 'lifecycled[report]'") from exc
        self._figure = Figure

    def subplots(self, figsize: tuple[float, float]) -> tuple[Any, Any]:
        figure = self._figure(figsize=figsize)
        return figure, figure.subplots()


class ReportUnavailable(InputError):
    """The optional plotting library is not installed."""


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prologue and DOCTYPE: inline in HTML


MAX_LABEL = 40  # characters of a category drawn under its bar (the table keeps the whole value)


def tick_label(value: str) -> str:
    """A category as an axis label: shortened, and with ``$`` escaped so that matplotlib draws it
    as written instead of parsing ``$...$`` as a formula (which failed, or drew a formula)."""
    text = value if len(value) <= MAX_LABEL else value[:MAX_LABEL - 1] + "\u2026"
    return text.replace("$", r"\$")


def _bars(plt: Figures, labels: Sequence[str], reference: Sequence[float],
          current: Sequence[float], title: str) -> str:
    figure, axes = plt.subplots(figsize=(6.0, 2.8))
    positions = range(len(labels))
    axes.bar(positions, reference, width=0.8, alpha=0.55, label="reference",
             color=COLOURS["reference"])
    axes.bar(positions, current, width=0.5, alpha=0.75, label="current",
             color=COLOURS["current"])
    axes.set_xticks(list(positions), [tick_label(str(label)) for label in labels], rotation=45,
                    ha="right", fontsize=7)
    axes.set_ylabel("share")
    axes.set_title(title, fontsize=9)
    axes.legend(fontsize=7)
    return _svg(figure)


def _cumulative(plt: Figures, edges: Sequence[float], reference: Sequence[float],
                current: Sequence[float], d: float | None) -> str:
    figure, axes = plt.subplots(figsize=(4.2, 2.8))
    cum_r, cum_c, total_r, total_c = [], [], 0.0, 0.0
    for r, c in zip(reference[:-1], current[:-1], strict=True):
        total_r, total_c = total_r + r, total_c + c
        cum_r.append(total_r)
        cum_c.append(total_c)
    axes.step(edges, cum_r, where="post", label="reference", color=COLOURS["reference"])
    axes.step(edges, cum_c, where="post", label="current", color=COLOURS["current"])
    if cum_r:
        gaps = [abs(a - b) for a, b in zip(cum_r, cum_c, strict=True)]
        at = max(range(len(gaps)), key=gaps.__getitem__)
        axes.vlines(edges[at], min(cum_r[at], cum_c[at]), max(cum_r[at], cum_c[at]),
                    colors="#b00020", linewidth=2, label="largest gap at an edge")
    axes.set_ylim(0, 1)
    axes.set_title(f"cumulative share at the bin edges; KS D = {d:.4g}" if d is not None
                   else "cumulative share at the bin edges", fontsize=9)
    axes.legend(fontsize=7)
    return _svg(figure)


def _number(value: Any, spec: str = ".4g") -> str:
    return "-" if value is None else format(value, spec)


# which test says whether the bin (category) effects are real: ``core.drift.MIN_EXPECTED``
_GATES = {"chi2": "chi-square", "ks": "KS (too few rows a bin for chi-square)",
          "fisher": "exact tests (too few rows a category for chi-square)"}


def _feature(plt: Figures, f: Mapping[str, Any]) -> str:
    name = html.escape(str(f["feature"]))
    severity = f["severity"] or "unjudged"
    parts = [f'<section class="feature" data-feature="{name}">',
             f'<h2>{name} <span class="sev-{html.escape(severity)}">{html.escape(severity)}</span>'
             f"</h2>"]
    if not f["judged"]:
        parts.append(f'<p class="reason">{html.escape(str(f["reason"]))}: '
                     f'{html.escape(str(f["detail"]))}</p></section>')
        return "".join(parts)
    p = f["adjusted_p_value"] if f["adjusted_p_value"] is not None else f["p_value"]
    rows = [("kind", f["kind"]), ("D" if f["kind"] == "numeric" else "TVD", _number(f["statistic"])),
            ("p (corrected)" if f["adjusted_p_value"] is not None else "p", _number(p, ".3g")),
            ("PSI", f"{_number(f['psi'])} ({f.get('psi_tier') or '-'})"),
            ("JS distance", _number(f["js"])), ("chi-square p", _number(f.get("chi2_p_value"), ".3g")),
            *([("exact p (few rows)", _number(f["exact_p_value"], ".3g"))]
              if f.get("exact_p_value") is not None else []),
            ("bins judged by", _GATES.get(f.get("bins_gated_by") or "chi2", "chi-square")),
            ("composite score", _number(f["score"])),
            ("set by", ", ".join(f.get("counted") or []) or "-"),
            ("missing share", f"{_number(f['reference_missing_share'], '.1%')} -> "
                              f"{_number(f['current_missing_share'], '.1%')}")]
    parts.append("<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}"
                                     "</td></tr>" for k, v in rows) + "</table>")
    bins = f.get("bins")
    if bins:
        charts = [_bars(plt, bins["labels"], bins["reference"], bins["current"],
                        "share per bin" if f["kind"] == "numeric" else "share per category")]
        if f["kind"] == "numeric" and bins.get("edges"):
            charts.append(_cumulative(plt, bins["edges"], bins["reference"], bins["current"],
                                      f["statistic"]))
        parts.append('<div class="charts">' + "".join(
            f'<figure class="chart">{svg}</figure>' for svg in charts) + "</div>")
    parts.append("</section>")
    return "".join(parts)


def render(record: Mapping[str, Any], title: str) -> str:
    """The report of one drift check (``tasks.drift.check_to_json`` form) as an HTML page."""
    plt = Figures()
    features = sorted(record["features"], key=lambda f: (
        RANK.get(f["severity"] or "", -1 if not f["judged"] and f["reason"] in (
            "type_mismatch", "missing_column") else 4), str(f["feature"])))
    severity = str(record["severity"])
    drivers = ", ".join(record.get("drivers") or []) or "none"
    share = record.get("drifted_share")
    head = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<div class="verdict"><p>Model severity: <strong class="sev-{html.escape(severity)}">'
        f"{html.escape(severity)}</strong> (rule {html.escape(str(record.get('rule', 'tiers')))}"
        f"); driven by {html.escape(drivers)}; drifted features: "
        f"{'-' if share is None else f'{share:.0%}'} of {record['judged']} judged, "
        f"{record['unjudged']} not judged.</p>",
        *([f'<p class="alpha">Judged at &alpha; = {record["alpha"]:.3g}'
           + (f", {html.escape(str(record['alpha_basis']))}" if record.get("alpha_basis") else "")
           + ".</p>"] if record.get("alpha") is not None else []),
        "<ul>" + "".join(f"<li>{html.escape(r)}</li>" for r in record["recommendations"])
        + "</ul></div>",
    ]
    body = [_feature(plt, f) for f in features]
    return "".join(head + body + ["</body></html>"])
