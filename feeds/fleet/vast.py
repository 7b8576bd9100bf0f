"""The Vast.ai host API, as the official client (vast-ai/vast-python, vast.py; docs/fleet-protocols.md) calls it:

- `show machines`: GET {api_url}/api/v0/machines?owner=me -> {"machines": [{"id", "num_gpus", "listed",
  "listed_gpu_cost", "current_rentals_running", ...}]}
- `list machine ID`: PUT {api_url}/api/v0/machines/create_asks/ with {"machine", "price_gpu", "price_disk",
  "price_inetu", "price_inetd", "price_min_bid", "min_chunk", "end_date", "credit_discount_max"}
  -> {"success": true, ...}; also how an asking price is changed
- `unlist machine ID`: DELETE {api_url}/api/v0/machines/{ID}/asks/ -> {"success": true}

The key goes in `Authorization: Bearer <key>` only (the official client also appends `api_key=` to the URL;
a URL ends up in logs and proxies, a header does not), and a keyed request never follows a redirect.
Requests are retried by urllib3 (5xx, 429, timeouts, connection errors; PUT and DELETE here are idempotent).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import requests

from hashpivot.feeds.fleet.secrets import Secret, redact
from hashpivot.feeds.http import HttpSettings, retrying_session
from hashpivot.models.errors import ActuatorError

log = logging.getLogger(__name__)

METHODS = frozenset({"GET", "PUT", "DELETE"})


@dataclass(frozen=True)
class VastMachine:
    """One hosted machine as `show machines` reports it."""

    id: int
    num_gpus: int
    listed: bool
    price_usd_per_gpu_hour: float | None
    rentals_running: int


def parse_machines(payload: bytes) -> dict[int, VastMachine]:
    """The `show machines` answer by machine id; ActuatorError when it is not the documented shape."""
    try:
        rows = json.loads(payload)["machines"]
        out = {}
        for r in rows:
            price = r.get("listed_gpu_cost")
            out[int(r["id"])] = VastMachine(int(r["id"]), int(r.get("num_gpus") or 0), bool(r.get("listed")),
                                            None if price is None else float(price), int(r.get("current_rentals_running") or 0))
        return out
    except (ValueError, KeyError, TypeError) as exc:
        raise ActuatorError(f"show machines: not the documented answer ({type(exc).__name__}: {str(exc)[:80]})") from None


class VastClient:
    """One session to one Vast.ai account. The key is held as a Secret: a repr of the client shows `***`."""

    def __init__(self, api_url: str, key: Secret, timeout_s: float = 10.0, retries: int = 2, backoff_s: float = 1.0):
        self.api_url = api_url.rstrip("/")
        self._key = key
        self.timeout_s, self.retries = timeout_s, retries
        self.session = retrying_session(HttpSettings(connect_timeout_s=timeout_s, read_timeout_s=timeout_s,
                                                     retries=retries, backoff_s=backoff_s), methods=METHODS)

    def __repr__(self) -> str:
        return f"VastClient({self.api_url!r}, key={self._key!r})"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "VastClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def machines(self) -> tuple[dict[int, VastMachine], int]:
        """The account's machines by id, and how many attempts the request took."""
        resp, attempts = self._request("GET", "/machines", "show machines", params={"owner": "me"})
        return parse_machines(resp.content), attempts

    def list_machine(self, machine_id: int, price_usd_per_gpu_hour: float, min_chunk: int, end_date_epoch: float) -> int:
        """List (or re-price) one machine; returns the attempts taken."""
        body = {"machine": machine_id, "price_gpu": price_usd_per_gpu_hour, "price_disk": None, "price_inetu": None,
                "price_inetd": None, "price_min_bid": None, "min_chunk": min_chunk, "end_date": end_date_epoch,
                "credit_discount_max": None}
        return self._request("PUT", "/machines/create_asks/", f"list machine {machine_id}", json=body, success=True)[1]

    def unlist_machine(self, machine_id: int) -> int:
        return self._request("DELETE", f"/machines/{machine_id}/asks/", f"unlist machine {machine_id}", success=True)[1]

    def _request(self, method: str, path: str, what: str, params=None, json=None,
                 success: bool = False) -> tuple[requests.Response, int]:
        url = f"{self.api_url}/api/v0{path}"
        headers = {"Authorization": f"Bearer {self._key.reveal()}", "Accept": "application/json"}
        most = self.retries + 1
        try:
            resp = self.session.request(method, url, params=params, json=json, headers=headers,
                                        timeout=(self.timeout_s, self.timeout_s), allow_redirects=False)
        except requests.exceptions.Timeout:
            raise ActuatorError(f"{what}: no answer within {self.timeout_s:g} s ({most} attempts)", most) from None
        except requests.exceptions.ConnectionError as exc:
            if "timeout" in _root(exc).lower():  # urllib3 reports a read timeout with no retries left this way
                raise ActuatorError(f"{what}: no answer within {self.timeout_s:g} s ({most} attempts)", most) from None
            raise ActuatorError(f"{what}: cannot connect to {self.api_url} ({_root(exc)}, {most} attempts)", most) from None
        except requests.exceptions.RequestException as exc:
            raise ActuatorError(f"{what}: request failed ({type(exc).__name__})", most) from None
        retries = getattr(resp.raw, "retries", None)
        attempts = 1 + (len(retries.history) if retries is not None else 0)
        log.debug("vastai method=%s path=%s status=%s attempts=%d", method, path, resp.status_code, attempts)
        if resp.status_code in (401, 403):
            raise ActuatorError(f"{what}: HTTP {resp.status_code}: the API key was refused{self._msg(resp)}", attempts)
        if 300 <= resp.status_code < 400:
            raise ActuatorError(f"{what}: redirect refused (HTTP {resp.status_code}; a keyed request is not forwarded)", attempts)
        if not 200 <= resp.status_code < 300:
            raise ActuatorError(f"{what}: HTTP {resp.status_code} after {attempts} attempts{self._msg(resp)}", attempts)
        if success:
            try:
                answer = resp.json()
            except ValueError:
                raise ActuatorError(f"{what}: the answer is not JSON", attempts) from None
            if not isinstance(answer, dict) or answer.get("success") is not True:
                raise ActuatorError(f"{what}: refused{self._msg(resp)}", attempts)
        return resp, attempts

    def _msg(self, resp: requests.Response) -> str:
        """The API's own `msg`, short and with the key scrubbed out (an error page may echo the request)."""
        try:
            msg = resp.json().get("msg")
        except (ValueError, AttributeError):
            msg = resp.text
        return f": {redact(str(msg), self._key)[:160]}" if msg else ""


def _root(exc: BaseException) -> str:
    while exc.__context__ is not None and exc.__context__ is not exc:
        exc = exc.__context__
    return type(exc).__name__
