"""The `hashpivot` command: thin typer commands, one module per group (solve, feeds, daemon, studies), each
parsing options, calling one library function and printing. Known errors (HashpivotError) become one clear
line on stderr and exit code 1; usage errors (unknown option, bad value, missing argument) two plain lines and
exit code 2; never a traceback.

A new command goes in the module of its group (or a new module imported here) and registers itself on
`common.app` (or a sub-app such as `common.feeds_app`).
"""

import sys

import typer

from hashpivot.optimizer.cli import console, daemon, feeds, fleet, holds, solve, store, studies  # noqa: F401  (each registers its commands)
from hashpivot.optimizer.cli.common import EXIT_USAGE, app


def _usage_error(exc: BaseException) -> bool:
    """Click's (and typer's vendored click's) usage errors: exit code 2 and a message of their own."""
    return getattr(exc, "exit_code", None) == EXIT_USAGE and hasattr(exc, "format_message")


def main(argv: list[str] | None = None) -> None:
    try:
        code = app(args=argv, standalone_mode=False)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as exc:  # only usage errors are handled here; anything else propagates unchanged
        if not _usage_error(exc):
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":  # `hashpivot` or `hashpivot feeds` alone: the help
            typer.echo(exc.format_message())
            sys.exit(0)
        command = exc.ctx.command_path if getattr(exc, "ctx", None) else getattr(exc, "command", "hashpivot")
        typer.echo(f"error: {exc.format_message()}", err=True)
        typer.echo(f"see '{command} --help'", err=True)
        sys.exit(EXIT_USAGE)
    sys.exit(code if isinstance(code, int) else 0)
