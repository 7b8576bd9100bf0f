"""What every command shares: the typer app and its sub-apps, shared options, error handling, output.

Commands import the library inside their functions: loading Pyomo, pandas, Dask and matplotlib for every
`--help` would make each call slower by seconds, and `hashpivot solve` stays near 1 s.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from enum import Enum
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Optional

import typer

from hashpivot.models.errors import HashpivotError, InputError

app = typer.Typer(
    name="hashpivot",
    help="Decide, interval by interval, how much power each ASIC and GPU pool of a mining site gets.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_show_locals=False,
)
feeds_app = typer.Typer(
    help="Collect, import and inspect market data in the local store.", no_args_is_help=True,
    rich_markup_mode="markdown",
    epilog="**Examples**\n\n    hashpivot feeds fetch --db store.sqlite\n\n"
           "    hashpivot feeds import ercot_native_load_hourly.csv --db store.sqlite\n\n"
           "    hashpivot feeds status --db store.sqlite\n\n    hashpivot feeds show --series btc_usd --format csv")
decisions_app = typer.Typer(
    help="Decisions taken by `run` / `tick`.", no_args_is_help=True, rich_markup_mode="markdown",
    epilog="**Examples**\n\n    hashpivot decisions show --db store.sqlite\n\n"
           "    hashpivot decisions show --db store.sqlite --format json")
store_app = typer.Typer(
    help="Check and back up the SQLite store.", no_args_is_help=True, rich_markup_mode="markdown",
    epilog="**Examples**\n\n    hashpivot store check --db store.sqlite\n\n"
           "    hashpivot store backup --db store.sqlite --to backups/store-2026-12-04.sqlite")
fleet_app = typer.Typer(
    help="The machines behind the ASIC pools and the GPU pools' actuators: scan, status, apply a decision, the audit "
         "log, a simulated farm to rehearse on.", no_args_is_help=True, rich_markup_mode="markdown",
    epilog="**Examples**\n\n    hashpivot fleet simulate --machines 200 --vnish-fraction 0.3 --inventory sim.csv &\n\n"
           "    hashpivot fleet scan --inventory sim.csv --db store.sqlite\n\n"
           "    hashpivot fleet apply decision.json --inventory sim.csv --db store.sqlite --dry-run\n\n"
           "    hashpivot fleet log --db store.sqlite --format csv")
hold_app = typer.Typer(
    help="Operator holds on a pool or a machine: the model honours a pool hold as fixed bounds, fleet apply never "
         "commands a held machine.", no_args_is_help=True, rich_markup_mode="markdown",
    epilog="**Examples**\n\n    hashpivot hold add --pool s19xp --off --until 2025-06-01T06:00Z --reason \"cooling repair\"\n\n"
           "    hashpivot hold add --machine 10.20.0.17 --off --reason \"hashboard RMA\"\n\n"
           "    hashpivot hold list --format json\n\n    hashpivot hold remove 3")
app.add_typer(hold_app, name="hold")
app.add_typer(feeds_app, name="feeds")
app.add_typer(fleet_app, name="fleet")
app.add_typer(store_app, name="store")
app.add_typer(decisions_app, name="decisions")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hashpivot {version('hashpivot')}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="print the version and exit")] = False,
) -> None:
    """Decide, interval by interval, how much power each ASIC and GPU pool of a mining site gets."""


DEFAULT_CONFIG = Path("configs/site.toml")

# Exit codes (README: CLI reference)
EXIT_ERROR = 1  # bad input, unusable data, solver failure: one `error: …` line
EXIT_USAGE = 2  # unknown option, bad option value, missing argument
EXIT_DEGRADED = 3  # tick: the decision published is `safe` or `kept` (cron and systemd see the failure)


def utc(text: str, option: str):
    """A command-line time as a tz-aware UTC pandas Timestamp (naive times are UTC); InputError if not a time."""
    from hashpivot.models.calendar import to_utc

    try:
        return to_utc(text)
    except (ValueError, TypeError):
        raise InputError(f"{option} {text!r}: not a date/time (use ISO 8601, e.g. 2024-08-05T14:00Z)") from None


def config_path(path: Path) -> Path:
    """The given config; the default falls back to the example site shipped with the package."""
    if path == DEFAULT_CONFIG and not path.exists():
        return Path(str(files("hashpivot.configs") / "site.toml"))
    return path


def load_site(path: Path, overrides: Optional[list[str]]):
    from hashpivot.models.config import load_config

    return load_config(config_path(path), overrides or [])


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


def operator_errors(func):
    """Turn hashpivot's own errors into `error: …` on stderr and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except HashpivotError as exc:  # several problems (a config with several bad keys): one `error:` line each
            typer.echo("\n".join(f"error: {line}" for line in str(exc).splitlines() or [""]), err=True)
            raise typer.Exit(EXIT_ERROR) from None

    return wrapper


def bad_choice(command: str, option: str, value: object, allowed: tuple[str, ...]) -> typer.BadParameter:
    """A usage error (exit 2, and "see '<command> --help'") for an option value outside its choices, as typer
    gives `--format xml`: raise the returned exception."""
    choices = " or ".join(allowed) if len(allowed) == 2 else "one of " + ", ".join(allowed)
    exc = typer.BadParameter(f"{option} {value!r}: must be {choices}")
    exc.command = command  # type: ignore[attr-defined]  (cli.main names it in the "see --help" line)
    return exc


class _Usage(typer.BadParameter):
    def format_message(self) -> str:  # the message alone, without typer's "Invalid value: "
        return self.message


def usage_error(command: str, message: str) -> typer.BadParameter:
    """A usage error (exit 2, and "see '<command> --help'") for a missing or malformed argument that typer itself
    cannot check (one of two options, a `--param` grid): raise the returned exception."""
    exc = _Usage(message)
    exc.command = command  # type: ignore[attr-defined]
    return exc


def setup_logging(verbose: bool) -> None:
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("hashpivot").setLevel(level)  # pyasic sets the root logger to WARNING when it is imported
    logging.getLogger("pyomo").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # its per-retry warnings; hashpivot logs one line per failed source


def emit(text: str, output: Optional[Path]) -> None:
    """Print `text`, or write it to `output` whole (temp file and rename: never half a file, nothing left
    behind on failure)."""
    from hashpivot.optimizer.service.publish import write_atomic

    if output is None:
        typer.echo(text, nl=False)
        return
    if output.is_dir():
        raise InputError(f"--output {output}: is a directory; give a file name")
    if not output.parent.is_dir():
        raise InputError(f"--output {output}: the directory {output.parent} does not exist")
    try:
        write_atomic(output, text)
    except OSError as exc:
        raise InputError(f"--output {output}: cannot write ({exc.strerror})") from None
    typer.echo(f"wrote {output}", err=True)


def clear_outputs(out: Path, patterns: tuple[str, ...]) -> None:
    """Remove an earlier run's files of these patterns from a reused output folder, so none of them is left beside
    this run's (a strategy or a chart this run does not write). Only the study's own file names are touched."""
    for pattern in patterns:
        for path in out.glob(pattern):
            if path.is_file():
                path.unlink()


def out_dir(out: Path, option: str = "--out", fresh: bool = False) -> Path:
    """A study's output folder, made once its results exist (a failed run leaves no empty folder). `fresh` (a
    default name): never a folder that exists, so a second run in the same second gets `NAME-2`, not the first's."""
    if fresh:
        for n in range(1, 1000):
            path = out if n == 1 else out.with_name(f"{out.name}-{n}")
            try:
                path.mkdir(parents=True)
                return path
            except FileExistsError:
                continue
            except OSError as exc:
                raise InputError(f"cannot create the output folder {path} ({exc.strerror})") from None
        raise InputError(f"{out}: 999 output folders of this name exist already; give --out")
    if out.exists() and not out.is_dir():
        raise InputError(f"{option} {out}: is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{option} {out}: cannot create the folder ({exc.strerror})") from None
    return out


def open_store(cfg, db: Optional[Path], create: bool = True):
    """The store at `--db`, else `feeds.db_path`, else the user data dir. Commands that only read it pass
    `create=False`: a path that does not exist is an error rather than a new empty database."""
    from hashpivot.feeds.store import Store, default_db_path
    from hashpivot.models.errors import StoreError

    path = db or (Path(cfg.feeds.db_path).expanduser() if cfg.feeds.db_path else default_db_path())
    if not create and not Path(path).exists():
        raise StoreError(f"store {path}: no such file (`hashpivot feeds fetch` or `feeds import` creates it)")
    return Store(path)


def cell_text(v) -> str:
    """A table cell: thousands separators, whole numbers above 1,000, never scientific notation for money."""
    import pandas as pd

    if v is None or v is pd.NA or (isinstance(v, float) and v != v):
        return ""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, int) or float(v).is_integer() or abs(v) >= 1000:
        return f"{round(v):,}"  # never "-0"
    return f"{v:,.2f}" if abs(v) >= 1 else f"{v:.4g}"


def frame_out(df, format: OutputFormat, title: str) -> None:
    """A DataFrame as JSON, CSV or a table that fits the terminal: when its columns do not fit side by side
    and it has few rows, it is printed turned (one line per column), so no header or number is ever cut. Cells,
    headers and the title are plain text, never rich markup (`unit_limits[s21,t=0]` keeps its brackets)."""
    import pandas as pd
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table
    from rich.text import Text

    from hashpivot.optimizer.cli.render import terminal_width

    FOLD_WIDTH = 30  # a long text cell of a turned table folds, but not narrower than this

    if format is OutputFormat.json:  # through json: pandas escapes '/' ("TH\\/s"), json.dumps does not
        typer.echo(json.dumps(json.loads(df.to_json(orient="records", date_format="iso")), indent=2))
        return
    if format is OutputFormat.csv:
        typer.echo(df.to_csv(index=False), nl=False)
        return
    width = terminal_width()
    cells = [[cell_text(v) for v in row] for row in df.itertuples(index=False)]
    needed = sum(max([len(str(c))] + [len(r[i]) for r in cells]) + 3 for i, c in enumerate(df.columns)) + 1
    if needed > width and 0 < len(df) <= 12:
        # turned: one column per row; as many tables as it takes for every row to fit the width
        console = Console(width=width)
        label_w = max(len(str(c)) for c in df.columns)
        widths = [max([len(c) for c in row[1:] if len(c) <= 16] + [min(len(row[0]), 16), 8]
                      + [min(len(c), FOLD_WIDTH) for c in row[1:] if len(c) > 16]) for row in cells]

        def turned(group: list[int], name: str) -> Table:
            part = Table(title=Text(name))
            part.add_column(Text(str(df.columns[0])), justify="left", no_wrap=True, min_width=label_w)
            for i in group:  # short cells (numbers) keep their width; long text folds, at FOLD_WIDTH or wider
                part.add_column(Text(cells[i][0]), justify="right", overflow="fold", min_width=widths[i])
            for j, col in enumerate(df.columns[1:], start=1):
                part.add_row(Text(str(col)), *[Text(cells[i][j]) for i in group])
            return part

        groups: list[list[int]] = [[]]
        wide = console.options.update_width(10_000)  # to measure a group's narrowest width: long text folded
        for i in range(len(cells)):
            if groups[-1] and Measurement.get(console, wide, turned(groups[-1] + [i], "")).minimum > width:
                groups.append([])
            groups[-1].append(i)
        for n, group in enumerate(groups, start=1):
            console.print(turned(group, title if len(groups) == 1 else f"{title} ({n} of {len(groups)})"))
        return
    if needed <= width or df.shape[1] < 3:
        table = Table(title=Text(title))
        for col in df.columns:
            numeric = pd.api.types.is_numeric_dtype(df[col])
            table.add_column(Text(str(col)), justify="right" if numeric else "left", overflow="fold", no_wrap=numeric)
        for row in cells:
            table.add_row(*[Text(c) for c in row])
        Console(width=width).print(table)
        return
    # too wide and too long to turn: the columns in as many tables as it takes, each led by the first column,
    # every cell whole (a crushed column showed '14,67' for 14,672)
    natural = [max([len(str(c))] + [len(r[i]) for r in cells]) + 3 for i, c in enumerate(df.columns)]
    groups: list[list[int]] = [[]]
    for i in range(1, df.shape[1]):
        if groups[-1] and natural[0] + 1 + sum(natural[j] for j in groups[-1]) + natural[i] > width:
            groups.append([])
        groups[-1].append(i)
    for n, group in enumerate(groups, start=1):
        part = Table(title=Text(f"{title} (columns {n} of {len(groups)})"))
        for i in [0, *group]:
            col = df.columns[i]
            numeric = pd.api.types.is_numeric_dtype(df[col])
            part.add_column(Text(str(col)), justify="right" if numeric else "left", no_wrap=True)
        for row in cells:
            part.add_row(*[Text(row[i]) for i in [0, *group]])
        Console(width=width).print(part)


def echo_json(value) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


# options several commands share
ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="site config TOML")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="override a config key: key.path=value (repeatable)")]
DbOpt = Annotated[Optional[Path], typer.Option(help="SQLite store (default: feeds.db_path, else the user data dir)")]
FormatOpt = Annotated[OutputFormat, typer.Option("--format", "-f", help="table, json or csv")]
AtOpt = Annotated[Optional[str], typer.Option(help="decision time, UTC ISO 8601 (default: latest in the data)")]
DataOpt = Annotated[Optional[Path], typer.Option(help="directory of market CSVs (default: the embedded data)")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="log timings and steps to stderr")]
SiteConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="site config TOML (default: ./configs/site.toml, else the bundled example site)")]
SourceOpt = Annotated[str, typer.Option(help="embedded (offline default) or store (latest values from `feeds fetch`)")]
SourceDbOpt = Annotated[Optional[Path], typer.Option("--db", help="store path for --source store (default: feeds.db_path, else the user data dir)")]
