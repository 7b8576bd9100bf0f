"""The console as a Starlette application: the page, its JSON endpoints, the token check, security headers and
the operator actions (holds, the fleet.apply switch), each audited in the fleet audit table.

Every request reads the store (one connection per request, closed after); nothing here solves. With a token
configured every path but /healthz and /login needs it, as `Authorization: Bearer <token>` (scripts) or the
session cookie /login sets (a browser); both are compared in constant time and never logged. Actions are POSTs
that also carry a CSRF field derived from the token and must come from the page's own origin.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from html import escape
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pandas as pd
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from hashpivot.feeds.store import Store
from hashpivot.models.calendar import iso_utc, to_utc
from hashpivot.models.clock import now_utc
from hashpivot.models.config import SiteConfig
from hashpivot.models.errors import HashpivotError, InputError
from hashpivot.optimizer.console.chart import chart_svg, past_power, planned
from hashpivot.optimizer.console.page import render_login, render_page
from hashpivot.optimizer.console.state import StoreState, overview, read_state
from hashpivot.optimizer.service.holds import check_hold
from hashpivot.optimizer.service.overrides import APPLY_MODES, write_override

log = logging.getLogger(__name__)

SESSION_COOKIE = "hashpivot_console"
OPEN_PATHS = ("/healthz", "/login")
SECURITY_HEADERS = {
    # No script at all; inline styles only (the SVG chart's style attributes); forms post back to this origin.
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",  # not no-referrer: with it browsers send `Origin: null` on the page's own POSTs
    "cache-control": "no-store",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


def _cross_site(request: Request) -> Response | None:
    """The refusal of a POST from another origin (its Origin header or the browser's Sec-Fetch-Site say so)."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        return JSONResponse({"error": f"origin {origin} is not this console"}, status_code=403)
    if request.headers.get("sec-fetch-site") not in (None, "same-origin", "none"):
        return JSONResponse({"error": "cross-site request refused"}, status_code=403)
    return None


def derived(token: str, purpose: str) -> str:
    """A value derived from the token (session cookie, CSRF field): proves knowledge of it without carrying it."""
    return hmac.new(token.encode(), f"hashpivot-console:{purpose}".encode(), hashlib.sha256).hexdigest()


def _same(a: str | None, b: str) -> bool:
    return a is not None and hmac.compare_digest(a.encode(), b.encode())


class Console:
    """The application's state: config, store path, token, clock; `app` is the ASGI app."""

    def __init__(self, cfg: SiteConfig, db: Path, token: str | None, clock: Callable[[], datetime] = now_utc):
        self.cfg, self.db, self.token, self.clock = cfg, Path(db), token, clock
        self.actions = cfg.console.allow_actions and token is not None
        self.csrf = derived(token, "csrf") if token else ""
        self._chart_lock = threading.Lock()
        self._chart_cache: tuple[tuple, str] | None = None
        routes = [
            Route("/", self.page), Route("/api/overview", self.api_overview), Route("/api/decision", self.api_decision),
            Route("/api/chart.svg", self.api_chart), Route("/healthz", self.healthz),
            Route("/login", self.login, methods=["GET", "POST"]),
            Route("/actions/holds", self.add_hold, methods=["POST"]),
            Route("/actions/holds/{hold_id:int}/remove", self.remove_hold, methods=["POST"]),
            Route("/actions/fleet-apply", self.switch_apply, methods=["POST"]),
        ]
        self.app = Starlette(routes=routes)
        self.app.add_middleware(_Guard, console=self)

    # ------------------------------------------------------------------ reading

    def _state(self) -> StoreState:
        if not self.db.exists():
            raise InputError(f"store {self.db}: no such file yet (the daemon creates it: `hashpivot run`)")
        with Store(self.db) as store:
            return read_state(self.cfg, store, self.db, self.clock())

    def _chart(self, state: StoreState, o: dict) -> str:
        doc = state.last[1] if state.last else None
        key = (state.last[0] if state.last else None, to_utc(state.now).floor("1min"), len(state.prices), len(state.history))
        with self._chart_lock:
            if self._chart_cache and self._chart_cache[0] == key:
                return self._chart_cache[1]
            plan_kw, plan_price, cp = planned(doc, o["decision"]["four_cp_field"] if o["decision"] else None)
            past_price = (state.prices.set_index("interval_start_utc")["value"] if not state.prices.empty
                          else pd.Series(dtype=float))
            svg = chart_svg(past_power(state.history, self.cfg.site.pue), plan_kw, past_price, plan_price,
                            doc.site.cap_kw if doc else self.cfg.site.interconnect_cap_kw, state.now, cp,
                            self.cfg.horizon.step_minutes)
            self._chart_cache = (key, svg)
            return svg

    def page(self, request: Request) -> Response:
        try:
            state = self._state()
        except HashpivotError as exc:
            return HTMLResponse(f"<!doctype html><title>hashpivot console</title><p>{escape(str(exc))}</p>", status_code=503)
        o = overview(self.cfg, state)
        pools = [p.name for p in self.cfg.asic_pools]
        return HTMLResponse(render_page(o, self._chart(state, o), self.cfg.console.refresh_s, self.actions, self.csrf, pools,
                                        request.query_params.get("msg")))

    def api_overview(self, request: Request) -> Response:
        try:
            state = self._state()
        except HashpivotError as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        return JSONResponse(overview(self.cfg, state))

    def api_decision(self, request: Request) -> Response:
        try:
            state = self._state()
        except HashpivotError as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        if state.last is None:
            return JSONResponse({"error": "no decision stored yet"}, status_code=404)
        return Response(state.last[1].to_json(), media_type="application/json",
                        headers={"x-hashpivot-decision-seq": str(state.last[0])})

    def api_chart(self, request: Request) -> Response:
        try:
            state = self._state()
        except HashpivotError as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        return Response(self._chart(state, overview(self.cfg, state)), media_type="image/svg+xml")

    def healthz(self, request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def login(self, request: Request) -> Response:
        if self.token is None:
            return RedirectResponse("/", status_code=303)
        if request.method == "GET":
            return HTMLResponse(render_login())
        refused = _cross_site(request)
        if refused is not None:  # login CSRF: a foreign page must not sign this browser in
            return refused
        form = await _form(request)
        if not _same(form.get("token"), self.token):
            log.warning("console login refused client=%s", request.client.host if request.client else "?")
            return HTMLResponse(render_login("wrong token"), status_code=401)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(SESSION_COOKIE, derived(self.token, "session"), httponly=True, samesite="strict", path="/")
        return response

    # ------------------------------------------------------------------ actions

    async def _action_form(self, request: Request) -> dict[str, str] | Response:
        """The form of an action request, or the refusal: actions off, bad CSRF field, foreign origin."""
        if not self.actions:
            return JSONResponse({"error": "actions are off: set console.allow_actions = true (and a token)"}, status_code=403)
        refused = _cross_site(request)
        if refused is not None:
            return refused
        form = await _form(request)
        if not _same(form.get("csrf"), self.csrf):
            return JSONResponse({"error": "missing or wrong csrf field (reload the page)"}, status_code=403)
        return form

    def _audit(self, request: Request, target_ip: str, pool: str, command: str, result: str, detail: str) -> None:
        client = request.client.host if request.client else "?"
        with Store(self.db) as store:
            store.log_commands(self.clock(), None, [(target_ip, pool, f"console: {command}", result,
                                                     f"from {client}: {detail}", 1)])
        log.info("console action=%r pool=%s machine=%s result=%s client=%s detail=%r", command, pool, target_ip, result,
                 client, detail)

    def _done(self, message: str, status: int = 303) -> Response:
        if status != 303:
            return JSONResponse({"error": message}, status_code=status)
        return RedirectResponse("/?msg=" + quote(message), status_code=303)

    async def add_hold(self, request: Request) -> Response:
        form = await self._action_form(request)
        if isinstance(form, Response):
            return form
        pool, what, reason = form.get("pool", ""), form.get("what", "off"), form.get("reason", "").strip()
        try:
            if what == "units" and not form.get("units", "").strip().isdigit():
                raise InputError(f"units {form.get('units', '')!r}: give a whole number of units >= 0")
            units = int(form["units"]) if what == "units" else None
            mode = form.get("mode") or None if what == "mode" else None
            if what == "mode" and mode is None:
                raise InputError("mode: name the mode the pool is held in")
            until = iso_utc(_utc(form["until"])) if form.get("until") else None
            hold = {"pool": pool, "ip": None, "units": units, "off": what == "off", "mode": mode, "until_utc": until,
                    "reason": reason}
            check_hold(self.cfg, hold, self.clock())
        except (InputError, ValueError) as exc:
            self._audit(request, "-", pool or "-", "hold add", "refused", str(exc))
            return self._done(f"hold refused: {exc}", 400)
        with Store(self.db) as store:
            hold_id = store.add_hold(hold, self.clock())
        self._audit(request, "-", pool, "hold add", "ok", f"hold {hold_id}: {what} {units or mode or ''} until "
                    f"{until or 'removed'}: {reason}")
        return self._done(f"hold {hold_id} added on {pool}")

    async def remove_hold(self, request: Request) -> Response:
        form = await self._action_form(request)
        if isinstance(form, Response):
            return form
        hold_id = request.path_params["hold_id"]
        with Store(self.db) as store:
            removed = store.remove_hold(hold_id, self.clock())
        self._audit(request, "-", "-", "hold remove", "ok" if removed else "refused", f"hold {hold_id}")
        return self._done(f"hold {hold_id} removed") if removed else self._done(f"no hold {hold_id} in force", 404)

    async def switch_apply(self, request: Request) -> Response:
        form = await self._action_form(request)
        if isinstance(form, Response):
            return form
        mode, reason = form.get("apply", ""), form.get("reason", "").strip()
        detail, status = None, 400
        if mode not in APPLY_MODES:
            detail = f"apply {mode!r}: must be one of {', '.join(APPLY_MODES)}"
        elif not reason:
            detail = f"switching fleet.apply to {mode} needs a reason (it goes into the audit log)"
        elif self.cfg.fleet.apply_pinned:
            detail, status = (f"fleet.apply is pinned to {self.cfg.fleet.apply} by --set on the daemon's command line; "
                              "restart it without that --set to switch here"), 409
        if detail is not None:
            self._audit(request, "-", "*", "fleet.apply", "refused", detail)
            return self._done(detail, status)
        client = request.client.host if request.client else "?"
        write_override(self.db, mode, iso_utc(self.clock()), f"console {client}", reason)
        self._audit(request, "-", "*", f"fleet.apply {mode}", "ok", reason)
        return self._done(f"fleet.apply switched to {mode} (from the next decision)")


class _Guard:
    """ASGI middleware: the token check on every path but OPEN_PATHS, and the security headers on every response."""

    def __init__(self, app, console: Console):
        self.app, self.console = app, console

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
            await send(message)

        token = self.console.token
        if token is not None and scope["path"] not in OPEN_PATHS and not self._authorised(Request(scope), token):
            request = Request(scope)
            if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
                response: Response = HTMLResponse(render_login(), status_code=401)
            else:
                response = JSONResponse({"error": "a console token is required (Authorization: Bearer …)"}, status_code=401,
                                        headers={"www-authenticate": 'Bearer realm="hashpivot console"'})
            return await response(scope, receive, with_headers)
        return await self.app(scope, receive, with_headers)

    @staticmethod
    def _authorised(request: Request, token: str) -> bool:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and _same(given.strip(), token):
            return True
        return _same(request.cookies.get(SESSION_COOKIE), derived(token, "session"))


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form body (first value of each field), read without python-multipart."""
    body = (await request.body())[:65536].decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


def _utc(text: str):
    try:
        return to_utc(text)
    except (ValueError, TypeError):
        raise InputError(f"until {text!r}: not a date/time (use ISO 8601, e.g. 2026-12-03T06:00Z)") from None
