"""Reference and current feature samples and labelled outcomes from CSV, Parquet or JSON Lines,
on local disk or behind a URL (``sources.files``).

A file becomes a mapping of column name -> numpy array: numbers as float64 (missing -> NaN),
everything else as an object array of str (missing -> None).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pa_parquet

from lifecycled.errors import SourceError, first_line
from lifecycled.sources.files import DEFAULT_TIMEOUT, DataFile, expand

Columns = dict[str, np.ndarray]
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl",
           ".ndjson": "jsonl", ".json": "jsonl"}


@dataclass(frozen=True)
class Sample:
    """Columns read from one or more files, and where they came from."""

    columns: Columns
    files: tuple[str, ...]
    rows: int


def read_table(file: DataFile) -> pa.Table:
    """Read one file into an Arrow table; every failure is a SourceError naming the file."""
    kind = FORMATS.get(file.suffix.lower())
    if kind is None:
        raise SourceError(str(file), f"unknown file type {file.suffix!r}: use .csv, .parquet or "
                                     f".jsonl")

    def read() -> pa.Table:
        if kind == "parquet":
            return pa_parquet.read_table(file.path, filesystem=file.fs)
        if kind == "csv":
            if file.local:
                return pa_csv.read_csv(file.path)
            with file.fs.open_input_stream(file.path) as stream:
                return pa_csv.read_csv(stream)
        with file.fs.open_input_stream(file.path) as stream:
            data = stream.read()
        check_flat_lines(file, data)  # pyarrow's JSON reader crashes on deep nesting
        return pa_json.read_json(pa.BufferReader(data))

    try:
        table = file.within(read)  # one deadline for the whole file, every request included
    except FileNotFoundError as exc:
        raise SourceError(str(file), "file not found") from exc
    except (OSError, pa.ArrowException) as exc:
        if _missing(exc):
            raise SourceError(str(file), "file not found") from exc
        if "ACCESS_DENIED" in str(exc):
            raise SourceError(str(file), f"access denied (check the credentials the environment "
                                         f"gives): {first_line(exc)}") from exc
        # only a file that was read and did not parse is read again to find its bad line (a
        # network failure is not: the second read would cost a second deadline)
        unparsable = isinstance(exc, pa.ArrowInvalid) and kind == "csv"
        where = _bad_csv_line(file) if unparsable else None
        at = f" (line {where})" if where else ""
        raise SourceError(str(file), f"cannot read {kind}{at}: {first_line(exc)}") from exc
    return plain_columns(file, table)


def _missing(exc: BaseException) -> bool:
    text = str(exc)
    return "Path does not exist" in text or "NoSuchKey" in text or "NOT_FOUND" in text


MAX_BRACKETS_PER_LINE = 32


def check_flat_lines(path: DataFile | str, data: bytes) -> None:
    """Refuse a JSON Lines file with a line of more than MAX_BRACKETS_PER_LINE opening brackets
    outside its strings (a bound on its nesting depth), counted for the whole file at once."""
    raw = np.frombuffer(data, dtype=np.uint8)
    opens = (raw == ord("{")) | (raw == ord("["))
    if not opens.any():
        return
    newline = raw == ord("\n")
    line_of = np.cumsum(newline) - newline
    opens &= ~_inside_strings(raw, newline, line_of)
    per_line = np.bincount(line_of[opens])
    if per_line.max() > MAX_BRACKETS_PER_LINE:
        line = int(np.argmax(per_line > MAX_BRACKETS_PER_LINE)) + 1
        raise SourceError(str(path), f"line {line} has more than {MAX_BRACKETS_PER_LINE} opening "
                                     f"brackets: nested values are not supported (one flat "
                                     f"object per line)")


def _inside_strings(raw: np.ndarray, newline: np.ndarray, line_of: np.ndarray) -> np.ndarray:
    """Which bytes lie inside a JSON string: after an odd number of unescaped quotes on their
    line (a quote is escaped by an odd run of backslashes before it)."""
    index = np.arange(raw.size)
    backslash = raw == ord("\\")
    last_other = np.maximum.accumulate(np.where(~backslash, index, -1))
    run = (index - 1) - np.concatenate(([-1], last_other[:-1]))  # backslashes just before
    quotes = (raw == ord('"')) & (run % 2 == 0)
    before = np.cumsum(quotes) - quotes  # quotes before each byte in the file
    starts = np.concatenate(([0], np.flatnonzero(newline) + 1))
    at_line_start = np.concatenate(([0], np.cumsum(quotes)))[starts]
    return (before - at_line_start[line_of]) % 2 == 1


def plain_columns(path: DataFile | str, table: pa.Table) -> pa.Table:
    """Binary columns as UTF-8 text; SourceError naming the column (and row) for nested values
    and for bytes that are not UTF-8."""
    try:
        names = table.column_names
    except UnicodeDecodeError:
        raise SourceError(str(path), "a column name is not UTF-8 text") from None
    for index, (name, column) in enumerate(zip(names, table.columns, strict=True)):
        kind = column.type
        if pa.types.is_nested(kind) or (pa.types.is_dictionary(kind)
                                        and pa.types.is_nested(kind.value_type)):
            raise SourceError(str(path), f"column {name!r} holds nested values ({kind}); only "
                                         f"numbers, text, booleans and times are supported")
        if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) \
                or pa.types.is_fixed_size_binary(kind):
            try:
                text = column.cast(pa.string())
            except pa.ArrowException:
                raise _not_utf8(path, name, column) from None
            table = table.set_column(index, name, text)
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            try:
                column.validate(full=True)  # readers may pass invalid UTF-8 through
            except pa.ArrowException:
                raise _not_utf8(path, name, column.cast(pa.binary())) from None
    return table


def _not_utf8(path: DataFile | str, name: str, raw: pa.ChunkedArray) -> SourceError:
    row = next((i for i, value in enumerate(raw.to_pylist())
                if value is not None and not _is_utf8(value)), None)
    at = f" row {row + 1}" if row is not None else ""
    return SourceError(str(path), f"column {name!r}{at} is not UTF-8 text")


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _bad_csv_line(file: DataFile) -> int | None:
    """Return the first line whose field count differs from the header's (for error messages)."""
    try:
        text = file.read_bytes().decode("utf-8", errors="replace")
    except (OSError, pa.ArrowException):
        return None
    try:
        rows = csv.reader(io.StringIO(text, newline=""))
        header = next(rows, None)
        if header is None:
            return None
        for row in rows:
            if row and len(row) != len(header):
                return rows.line_num
    except csv.Error:
        return None
    return None


def table_to_columns(table: pa.Table) -> Columns:
    """Convert an Arrow table to numpy columns (numbers float64 with NaN; the rest str/None)."""
    columns: Columns = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
            columns[name] = column.cast(pa.float64()).to_numpy()
        elif pa.types.is_null(kind):
            columns[name] = np.full(len(column), np.nan)
        elif pa.types.is_timestamp(kind) or pa.types.is_date(kind):
            columns[name] = pc.cast(column, pa.timestamp("us", tz="UTC")).cast(pa.int64()) \
                .cast(pa.float64()).to_numpy() / 1e6
        else:
            columns[name] = np.array(column.cast(pa.string()).to_pylist(), dtype=object)
    return columns


def read_sample(pattern: str, *, timestamp_column: str | None = None, window: float | None = None,
                newest_rows: int | None = None, now: float | None = None,
                timeout: float = DEFAULT_TIMEOUT) -> Sample:
    """Read a file, URL or glob; optionally keep the rows of the last ``window`` seconds before
    ``now`` (by ``timestamp_column``) or else the newest ``newest_rows`` rows."""
    files = expand(pattern, timeout=timeout)
    tables = [read_table(path) for path in files]
    try:
        table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    except pa.ArrowException as exc:
        raise SourceError(pattern, f"files do not share compatible columns: {exc}") from exc
    columns = table_to_columns(table)
    rows = table.num_rows
    if timestamp_column is not None:
        if timestamp_column not in columns:
            raise SourceError(pattern, f"no timestamp column {timestamp_column!r}")
        stamps = columns[timestamp_column]
        if stamps.dtype.kind != "f":
            raise SourceError(pattern, f"timestamp column {timestamp_column!r} is not numeric or a time")
        order = np.argsort(stamps, kind="stable")
        keep = order
        if window is not None:
            if now is None:
                raise ValueError("a window needs the current time")
            keep = order[stamps[order] >= now - window]
        elif newest_rows is not None:
            keep = order[-newest_rows:]
        columns = {name: values[keep] for name, values in columns.items()}
        rows = int(keep.size)
    elif newest_rows is not None and rows > newest_rows:
        columns = {name: values[-newest_rows:] for name, values in columns.items()}
        rows = newest_rows
    return Sample(columns, tuple(str(f) for f in files), rows)


def select(columns: Mapping[str, np.ndarray], exclude: Sequence[str]) -> Columns:
    """Return the columns without those in ``exclude`` (e.g. the timestamp)."""
    return {name: values for name, values in columns.items() if name not in exclude}
