"""`hashpivot serve`: the operator console (a web page and its JSON endpoints) on the store, read-only unless
console.allow_actions."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from hashpivot.optimizer.cli.common import (
    DEFAULT_CONFIG,
    ConfigOpt,
    DbOpt,
    SetOpt,
    app,
    load_site,
    operator_errors,
    setup_logging,
)


@app.command(epilog=(
    "**Examples**\n\n"
    "    hashpivot serve --db /var/lib/hashpivot/store.sqlite          # http://127.0.0.1:8080/\n\n"
    "    HASHPIVOT_CONSOLE_TOKEN=$(cat /etc/hashpivot/console.token) hashpivot serve --host 0.0.0.0 --port 8443\n\n"
    "    curl -H \"Authorization: Bearer $TOKEN\" http://10.0.0.5:8443/api/overview"))
@operator_errors
def serve(config: ConfigOpt = DEFAULT_CONFIG, set_: SetOpt = None, db: DbOpt = None,
          host: Annotated[Optional[str], typer.Option(help="bind address (default console.host, 127.0.0.1)")] = None,
          port: Annotated[Optional[int], typer.Option(min=0, max=65535, help="port (default console.port, 8080; 0 = a free one)")] = None,
          verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log requests' actions (default on)")] = True) -> None:
    """Serve the operator console: the last decision and why, a 48 h + horizon chart, feeds, fleet and holds.

    Reads the store only (it never solves). Beyond loopback it needs a token (console.token_file or
    $HASHPIVOT_CONSOLE_TOKEN), sent as `Authorization: Bearer …` or through the page's sign-in form.
    SIGINT/SIGTERM stop it.
    """
    setup_logging(verbose)
    from pathlib import Path

    from hashpivot.feeds.store import default_db_path
    from hashpivot.models.errors import StoreError
    from hashpivot.optimizer.console.server import prepare
    from hashpivot.optimizer.console.server import serve as serve_console

    cfg = load_site(config, set_)
    path = db or (Path(cfg.feeds.db_path).expanduser() if cfg.feeds.db_path else default_db_path())
    if not Path(path).exists():
        raise StoreError(f"store {path}: no such file (`hashpivot run` or `hashpivot tick` creates it)")
    served = prepare(cfg, path, host, port)
    typer.echo(f"console on {served.url} (store {path}); Ctrl-C stops it", err=True)
    serve_console(served)
