"""Reading a CSV file a user hands us (`--data`, `feeds import`, a scenario's `op = "csv"`) so that a damaged
one is refused with the file, line and column, never half-used: not text, a cut last line, a cell that is not
a number or not a time. Empty cells stay missing values (NaN) for the caller to bridge or refuse."""

from __future__ import annotations

import csv
import gzip
import io
import logging
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from hashpivot.models.errors import DataError

log = logging.getLogger(__name__)


def _text(path: Path) -> str:
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, EOFError) as exc:  # a directory, no permission, a cut or corrupt gzip stream
        raise DataError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text CSV file (bytes that are not UTF-8 text)") from None


def read_table(path: Path, required: Iterable[str], numeric: Iterable[str] = (), times: Iterable[str] = (),
               complete: bool = True) -> pd.DataFrame:
    """The CSV at `path` (plain or .gz) with `required` columns; `numeric` columns as floats and `times`
    columns as UTC timestamps. DataError naming the file, line and column of the first damaged cell.
    `complete`: market data must end with a line end, since a download or copy cut inside the last number
    (`…,4245` for 42458.92) leaves a row that parses; hand-written files (the fleet inventory) need not."""
    path = Path(path)
    text = _text(path)
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise DataError(f"{path}: empty file (expected a header line)")
    header = lines[0].split(",")
    if len(lines) > 1 and lines[-1].strip() and len(lines[-1].split(",")) < len(header):
        raise DataError(f"{path}: line {len(lines)} has {len(lines[-1].split(','))} of {len(header)} columns: "
                        "the file looks cut off")
    _check_widths(path, text)
    if complete and len(lines) > 1 and not text.endswith(("\n", "\r")):
        raise DataError(f"{path}: line {len(lines)} has no line end: the file looks cut off (a complete file ends "
                        "its last line with a newline; add one if the line is whole)")
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise DataError(f"{path}: not a readable CSV ({exc})") from None
    missing = sorted(set(required) - set(df.columns))
    if missing:
        raise DataError(f"{path}: missing columns {missing}; found {list(df.columns)}")
    return convert_columns(df, path, numeric, times)


def _check_widths(path: Path, text: str) -> None:
    """Every non-blank row has the header's number of fields (quoted commas counted as CSV counts them):
    pandas fills a short row in the middle of a file with empty cells, which would import as missing values."""
    if '"' in text:
        rows = [row for row in csv.reader(io.StringIO(text))]
        widths = [len(row) if any(cell.strip() for cell in row) else 0 for row in rows]
    else:  # no quoting: a comma count is the field count, ten times faster on the 38,000-line load file
        widths = [line.count(",") + 1 if line.strip(" ,") else 0 for line in text.splitlines()]
    width = widths[0] if widths else 0
    for line, n in enumerate(widths[1:], start=2):
        if n and n != width:
            raise DataError(f"{path}: line {line} has {n} of {width} columns (every row needs the header's {width})")


def convert_columns(df: pd.DataFrame, path: Path, numeric: Iterable[str] = (), times: Iterable[str] = ()) -> pd.DataFrame:
    """`numeric` columns (those present) as floats, `times` columns as UTC timestamps; DataError naming the
    file, line and column of the first cell that is neither empty nor of its kind."""
    df = df.copy()
    for col in numeric:
        if col in df.columns:
            df[col] = _numbers(df[col], path, col)
    for col in times:
        if col in df.columns:
            df[col] = _times(df[col], path, col)
    return df


def _numbers(cells: pd.Series, path: Path, column: str) -> pd.Series:
    blank = cells.str.strip() == ""
    values = pd.to_numeric(cells.where(~blank), errors="coerce")
    bad = values.isna() & ~blank
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise DataError(f"{path}: line {row + 2}, column {column}: {cells.iloc[row]!r} is not a number")
    return values.astype(float)


def _times(cells: pd.Series, path: Path, column: str) -> pd.Series:
    values = pd.to_datetime(cells, utc=True, errors="coerce", format="ISO8601")
    bad = values.isna()
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise DataError(f"{path}: line {row + 2}, column {column}: {cells.iloc[row]!r} is not an ISO 8601 time")
    return values
