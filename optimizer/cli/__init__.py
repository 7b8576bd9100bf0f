"""The `hashpivot` command: thin typer commands, one module per group (solve, feeds, daemon, studies), each
parsing options, calling one library function and printing. Known errors (HashpivotError) become one clear
line on stderr and exit code 1, never a traceback.

A new command goes in the module of its group (or a new module imported here) and registers itself on
`common.app` (or a sub-app such as `common.feeds_app`).
"""

from hashpivot.optimizer.cli import daemon, feeds, solve, studies  # noqa: F401  (each registers its commands)
from hashpivot.optimizer.cli.common import app


def main() -> None:
    app()
