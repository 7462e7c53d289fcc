"""Discovery: what every Triton endpoint serves, reconciled against the registry.

New READY versions are registered (owner ``auto_discovery``, tag ``auto_discovered`` unless the
config describes the model); each version's state per endpoint is recorded; a production or
staging version unavailable for ``unavailable_grace_passes`` passes moves to ``failed``.
An endpoint that cannot be read changes nothing: its last known states stay.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from lifecycled.actions.retire import run_plan
from lifecycled.context import Context
from lifecycled.core.reconcile import SERVING, Mismatch, find_mismatches
from lifecycled.domain import ModelRef, Status
from lifecycled.errors import InputError
from lifecycled.registration import build_spec
from lifecycled.sources.triton import Deployment, IndexEntry, TritonClient
from lifecycled.store.retirement import unfinished_plans
from lifecycled.store.serving import (
    forget_endpoints,
    put_serving_states,
    put_unmanaged,
    serving_states,
)
from lifecycled.store.updates import jobs_by_target

log = logging.getLogger(__name__)
WATCHED = (Status.PRODUCTION, Status.STAGING)  # statuses that expect the model to be serving


@dataclass
class DiscoveryOutcome:
    endpoints: dict[str, str] = field(default_factory=dict)  # name -> "up" or the error
    registered: list[str] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    unmanaged: list[str] = field(default_factory=list)  # "endpoint: name:version"
    retirements: dict[str, str] = field(default_factory=dict)  # resumed plans: model -> state

    def to_json(self) -> dict[str, Any]:
        return {"endpoints": self.endpoints, "registered": self.registered,
                "changed": self.changed, "failed": self.failed,
                "mismatches": [m.to_json() for m in self.mismatches],
                "unmanaged": self.unmanaged, "retirements": self.retirements}


def _read_endpoint(ctx: Context, client: TritonClient, known: set[ModelRef]
                   ) -> tuple[list[IndexEntry], dict[ModelRef, Deployment]]:
    """The index, and the deployment of each READY version to register (not the target of an
    active update job: that one is registered by the validation gate)."""
    entries = client.index()
    deployments = {}
    if ctx.settings.defaults.monitoring.auto_register:
        for entry in entries:
            ref = _ref(entry)
            if ref and entry.state == "READY" and ref not in known:
                deployments[ref] = client.model_config(entry.name, entry.version or "")
    return entries, deployments


def _ref(entry: IndexEntry) -> ModelRef | None:
    if entry.version is None:
        return None
    try:
        return ModelRef(entry.name, entry.version)
    except InputError:
        return None


def _unmanaged(entries: list[IndexEntry]) -> list[tuple[str, str, str]]:
    """(name, version, why) of the served versions whose name or version the registry refuses
    (Triton allows names such as ``_shadow``): skipped, never failing the rest of the fleet."""
    found = []
    for entry in entries:
        if entry.version is None:
            continue  # not loaded: Triton lists the model without a version
        try:
            ModelRef(entry.name, entry.version)
        except InputError as exc:
            found.append((entry.name, entry.version, str(exc)))
    return found


def run_discovery(ctx: Context) -> DiscoveryOutcome:
    """One discovery pass over every configured Triton endpoint."""
    report = DiscoveryOutcome()
    now = ctx.clock()
    statuses = ctx.store.statuses()
    targets = jobs_by_target(ctx.store)
    known = set(statuses) | {ref for ref, job in targets.items() if job.active}
    observed: dict[str, list[IndexEntry]] = {}
    deployments: dict[ModelRef, Deployment] = {}
    for endpoint in ctx.settings.sources.triton:
        with ctx.source(f"triton:{endpoint.name}") as call, ctx.triton(endpoint) as client:
            entries, found = _read_endpoint(ctx, client, known)
        report.endpoints[endpoint.name] = call.error or "up"
        if call.failed:
            continue
        observed[endpoint.name] = entries
        for ref, deployment in found.items():
            deployments.setdefault(ref, deployment)
    with ctx.store.write() as conn:
        if forget_endpoints(conn, [e.name for e in ctx.settings.sources.triton]):
            log.info("forgot the serving states of Triton endpoints no longer configured")
        _register(ctx, conn, deployments, statuses, report, now, targets)
        _record_states(ctx, conn, observed, statuses, report, now)
        for served_by, entries in observed.items():
            unmanaged = _unmanaged(entries)
            report.unmanaged.extend(f"{served_by}: {name}:{version}"
                                    for name, version, _ in unmanaged)
            for name, version, why in put_unmanaged(conn, served_by, unmanaged, now):
                log.warning("not managing a model Triton serves endpoint=%s model=%s version=%s "
                            "reason=%s", served_by, name, version, why)
    report.mismatches = find_mismatches(
        statuses,
        [(s.ref, s.endpoint, s.state) for s in serving_states(ctx.store, states=SERVING)])
    if len(observed) == len(ctx.settings.sources.triton):  # every endpoint answered
        _resume_unloaded(ctx, observed, report)
    return report


def _resume_unloaded(ctx: Context, observed: dict[str, list[IndexEntry]],
                     report: DiscoveryOutcome) -> None:
    """Retirement plans waiting for their pipeline to unload a version go on once no endpoint
    serves it any more."""
    served = {ref for entries in observed.values() for entry in entries
              if entry.state in ("READY", "LOADING") and (ref := _ref(entry)) is not None}
    for plan in unfinished_plans(ctx.store):
        if plan.state == "waiting_for_unload" and plan.ref not in served:
            result = run_plan(ctx, plan)
            report.retirements[str(plan.ref)] = result.state
            log.info("retirement resumed: Triton no longer serves it model=%s state=%s",
                     plan.ref, result.state)


def _register(ctx: Context, conn: Any, deployments: dict[ModelRef, Deployment],
              statuses: dict[ModelRef, Status], report: DiscoveryOutcome, now: float,
              targets: dict[ModelRef, Any]) -> None:
    for ref, deployment in sorted(deployments.items()):
        initial, reason = ctx.settings.defaults.monitoring.initial_status, "found READY in Triton"
        job = targets.get(ref)
        if job is not None and job.state in ("failed", "cancelled"):  # never production by itself
            initial = Status.FAILED
            reason = f"found READY in Triton, but update job {job.id} {job.state}: {job.reason}"
        spec = build_spec(ctx.settings, ref, framework=deployment.framework,
                          deployment=deployment.to_json(), fallback_owner="auto_discovery",
                          fallback_domain="unassigned", extra_tags=("auto_discovered",))
        ctx.store.register_in(conn, spec, initial, actor="discovery", reason=reason, now=now)
        statuses[ref] = initial
        report.registered.append(str(ref))
        log.info("registered discovered model=%s status=%s", ref, initial.value)


def _record_states(ctx: Context, conn: Any, observed: dict[str, list[IndexEntry]],
                   statuses: dict[ModelRef, Status], report: DiscoveryOutcome, now: float) -> None:
    grace = ctx.settings.defaults.monitoring.unavailable_grace_passes
    worst: dict[ModelRef, list[tuple[str, str, int]]] = {}
    ready: set[ModelRef] = set()
    for endpoint, entries in observed.items():
        states: dict[ModelRef, tuple[str, str]] = {}
        for entry in entries:
            ref = _ref(entry)
            if ref is not None:
                states[ref] = ((entry.state or "unknown").lower(), entry.reason)
        for ref in statuses:
            states.setdefault(ref, ("missing", ""))
        recorded = put_serving_states(conn, endpoint, states, now)
        for ref, (state, reason) in sorted(states.items()):
            previous, passes = recorded[ref]
            if previous is not None and previous != state:
                report.changed.append({"model": str(ref), "endpoint": endpoint, "from": previous,
                                       "to": state, "reason": reason})
                log.info("serving state changed model=%s endpoint=%s from=%s to=%s reason=%s",
                         ref, endpoint, previous, state, reason or "-")
            if state == "ready":
                ready.add(ref)
            elif state == "unavailable":
                worst.setdefault(ref, []).append((endpoint, reason, passes))
    for ref, problems in sorted(worst.items()):
        if ref in ready or statuses.get(ref) not in WATCHED:
            continue
        if min(p for _, _, p in problems) < grace:
            continue
        reasons = "; ".join(f"{e}: {r or 'no reason given'}" for e, r, _ in problems)
        ctx.store.set_status_in(
            conn, ref, Status.FAILED, actor="discovery",
            reason=f"unavailable in Triton for {grace}+ discovery passes ({reasons})",
            evidence={"endpoints": {e: {"reason": r, "passes": p} for e, r, p in problems}},
            now=now)
        report.failed.append(str(ref))
        log.warning("model failed model=%s reason=%s", ref, reasons)
