"""The `hashpivot` command: a thin layer that parses options, calls the library and prints.

Known errors (HashpivotError) become one clear line on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from models.errors import ConfigError, HashpivotError

app = typer.Typer(
    name="hashpivot",
    help="Decide, interval by interval, how much power each ASIC and GPU pool of a mining site gets.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_show_locals=False,
)

DEFAULT_CONFIG = Path("configs/site.toml")


def _config_path(path: Path) -> Path:
    """The given config; the default falls back to the example site shipped with the package."""
    if path == DEFAULT_CONFIG and not path.exists():
        from importlib.resources import files

        return Path(str(files("configs") / "site.toml"))
    return path


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


def _operator_errors(func):
    """Turn hashpivot's own errors into `error: …` on stderr and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except HashpivotError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None

    return wrapper


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("pyomo").setLevel(logging.WARNING)


def _emit(text: str, output: Optional[Path]) -> None:
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)


@app.command(
    epilog=(
        "**Examples**\n\n"
        "    hashpivot solve\n\n"
        "    hashpivot solve --at 2024-08-05T14:00Z --format json --output decision.json\n\n"
        "    hashpivot solve --set site.interconnect_cap_kw=80000 --set asic_pools.s21.units_available=5000\n\n"
        "    hashpivot solve --initial decision.json --at 2024-08-05T15:00Z   # continue from the last decision"
    )
)
@_operator_errors
def solve(
    config: Annotated[Path, typer.Option("--config", "-c", help="site config TOML (default: ./configs/site.toml, else the bundled example site)")] = DEFAULT_CONFIG,
    at: Annotated[Optional[str], typer.Option(help="decision time, UTC ISO 8601 (default: latest in the data)")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="override a config key: key.path=value (repeatable)")] = None,
    data: Annotated[Optional[Path], typer.Option(help="directory of market CSVs (default: the embedded data)")] = None,
    initial: Annotated[Optional[Path], typer.Option(help="what runs now: a previous decision JSON (default: free start)")] = None,
    strategy: Annotated[str, typer.Option(help="auto (LP rounding certified by the LP bound, else MIP) or mip")] = "auto",
    format: Annotated[OutputFormat, typer.Option("--format", "-f", help="table, json or csv")] = OutputFormat.table,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="write to this file instead of stdout")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log timings and solver steps to stderr")] = False,
) -> None:
    """Solve one interval: how many units of each pool run, in which mode, at what power, earning what, and why."""
    _setup_logging(verbose)
    from feeds.embedded import load_market_data
    from models.config import load_config
    from optimizer.explain import explain
    from optimizer.forecast import build_forecast
    from optimizer.problem import initial_state_from_decision, make_problem
    from optimizer.report import decision_document, to_csv, to_json, to_table
    from optimizer.solve import SolveSettings
    from optimizer.solve import solve as run_solve

    if strategy not in ("auto", "mip"):
        raise ConfigError(f"--strategy {strategy!r}: must be auto or mip")
    cfg = load_config(_config_path(config), set_ or [])
    market = load_market_data(data, cfg.site.settlement_point)
    forecast = build_forecast(cfg, market, at)
    state = None
    if initial is not None:
        try:
            state = initial_state_from_decision(json.loads(initial.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConfigError(f"{initial}: not a hashpivot decision JSON ({exc})") from None
    problem = make_problem(cfg, forecast, state)
    settings = SolveSettings(cfg.solver.mip_rel_gap, cfg.solver.time_limit_s, cfg.solver.threads, strategy)  # type: ignore[arg-type]
    solution = run_solve(problem, settings)
    doc = decision_document(solution, explain(solution), forecast, cfg.site.name)
    render = {OutputFormat.table: to_table, OutputFormat.json: to_json, OutputFormat.csv: to_csv}[format]
    _emit(render(doc), output)


@app.command(
    epilog=(
        "**Examples**\n\n"
        "    hashpivot hashprice --difficulty 8.9e13 --btc-usd 58000 --height 856000 --fees-btc-per-block 0.05\n\n"
        "    hashpivot hashprice --difficulty 20082460130795 --btc-usd 60865.45 --subsidy-btc 6.25 --format json"
    )
)
@_operator_errors
def hashprice(
    difficulty: Annotated[float, typer.Option(help="network difficulty")],
    btc_usd: Annotated[float, typer.Option(help="BTC price, USD")],
    fees_btc_per_block: Annotated[float, typer.Option(help="average fees per block, BTC (e.g. last 144 blocks)")] = 0.0,
    subsidy_btc: Annotated[Optional[float], typer.Option(help="block subsidy, BTC (or give --height)")] = None,
    height: Annotated[Optional[int], typer.Option(help="block height, to derive the subsidy from the halving schedule")] = None,
    format: Annotated[OutputFormat, typer.Option("--format", "-f", help="table, json or csv")] = OutputFormat.table,
) -> None:
    """Hashprice (USD per TH/s per day and per PH/s per day) from difficulty, subsidy, fees and BTC price."""
    from optimizer.hashprice import block_subsidy_btc, hashprice_usd_per_th_day

    if (subsidy_btc is None) == (height is None):
        raise ConfigError("give exactly one of --subsidy-btc or --height")
    if height is not None and height < 0:
        raise ConfigError(f"--height {height}: must be >= 0")
    if not difficulty > 0:
        raise ConfigError(f"--difficulty {difficulty}: must be > 0")
    if btc_usd < 0 or fees_btc_per_block < 0 or (subsidy_btc is not None and subsidy_btc < 0):
        raise ConfigError("--btc-usd, --fees-btc-per-block and --subsidy-btc must be >= 0")
    subsidy = subsidy_btc if subsidy_btc is not None else block_subsidy_btc(height)
    th = hashprice_usd_per_th_day(difficulty, btc_usd, subsidy, fees_btc_per_block)
    row = {
        "difficulty": difficulty,
        "btc_usd": btc_usd,
        "subsidy_btc": subsidy,
        "fees_btc_per_block": fees_btc_per_block,
        "hashprice_usd_per_th_day": th,
        "hashprice_usd_per_ph_day": th * 1000,
    }
    if format is OutputFormat.json:
        typer.echo(json.dumps(row, indent=2))
    elif format is OutputFormat.csv:
        typer.echo(",".join(row))
        typer.echo(",".join(repr(v) for v in row.values()))
    else:
        typer.echo(f"hashprice {th:.6f} USD/TH/day = {th * 1000:.3f} USD/PH/day")
        typer.echo(f"(difficulty {difficulty:.6g}, subsidy {subsidy:g} BTC, fees {fees_btc_per_block:g} BTC/block, BTC {btc_usd:,.2f} USD)")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
