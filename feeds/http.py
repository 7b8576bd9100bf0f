"""HTTP for collectors: one `requests` session with urllib3 retries (backoff, Retry-After honoured on 429/503),
connect/read timeouts and a descriptive User-Agent. Failures become FeedError with a reason an operator reads.
API keys come from environment variables, are sent only in headers/params and never logged.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from hashpivot.feeds.base import FeedError, Payload
from hashpivot.models.clock import now_utc

log = logging.getLogger(__name__)

USER_AGENT = "hashpivot/0.1 (mining-site power allocation; +https://github.com/hashpivot/hashpivot)"
RETRY_STATUSES = (429, 500, 502, 503, 504)


@dataclass
class HttpSettings:
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 20.0
    retries: int = 3
    backoff_s: float = 1.0  # urllib3 backoff factor: sleeps backoff x 2^(n-1) between attempts
    max_retry_after_s: float = 60.0
    budget_s: float | None = None  # every request of the client's life (a collection pass) ends within this


class _CappedRetry(Retry):
    """urllib3 Retry that honours Retry-After but never sleeps longer than `max_retry_after_s`, and starts no
    retry (nor sleeps) past `deadline` (time.monotonic(); the collection pass's budget), so a pass against
    silent sources ends at its budget rather than after every retry of its last request."""

    max_retry_after_s: float = 60.0
    deadline: float | None = None

    def new(self, **kw):
        new = super().new(**kw)
        new.max_retry_after_s = self.max_retry_after_s
        new.deadline = self.deadline
        return new

    def _left_s(self) -> float:
        return float("inf") if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def is_exhausted(self) -> bool:
        return super().is_exhausted() or self._left_s() <= 0

    def get_backoff_time(self) -> float:
        return min(super().get_backoff_time(), self._left_s())

    def get_retry_after(self, response):
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, self.max_retry_after_s, self._left_s())


def retrying_session(settings: HttpSettings, methods: frozenset[str] = frozenset({"GET", "POST"}),
                     deadline: float | None = None) -> requests.Session:
    """A `requests` session whose every request is retried by urllib3 on connection errors, read errors and
    429/5xx answers (exponential backoff, Retry-After honoured up to `max_retry_after_s`). The last answer is
    returned, not raised, so callers turn it into their own error. Used by the collectors and the webhook
    (GET, POST), and the Vast.ai client (whose PUT and DELETE are idempotent too). No retry starts after
    `deadline` (time.monotonic())."""
    retry = _CappedRetry(
        total=settings.retries,
        connect=settings.retries,
        read=settings.retries,
        status=settings.retries,
        backoff_factor=settings.backoff_s,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=methods,  # only idempotent ones: collectors read; the webhook POST is idempotent per seq
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    retry.max_retry_after_s = settings.max_retry_after_s
    retry.deadline = deadline
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


class HttpClient:
    """A session shared by every collector of one collection pass."""

    def __init__(self, settings: HttpSettings | None = None):
        self.settings = settings or HttpSettings()
        self.deadline = None if self.settings.budget_s is None else time.monotonic() + self.settings.budget_s
        self.session = retrying_session(self.settings, deadline=self.deadline)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "HttpClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def request(self, source: str, method: str, url: str, *, params=None, json=None, headers=None,
                redact: tuple[str, ...] = ()) -> Payload:
        """One request; FeedError on timeout, connection error or a non-2xx final status."""
        shown = url
        if params:
            shown += "?" + "&".join(f"{k}={'***' if k in redact else v}" for k, v in params.items())
        timeout = (self.settings.connect_timeout_s, self.settings.read_timeout_s)
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise FeedError(source, f"not fetched: the pass budget of {self.settings.budget_s:g} s (feeds.pass_budget_s) is spent")
            timeout = (min(timeout[0], left), min(timeout[1], left))
        keyed = bool(headers) or bool(redact)  # a key in a header or a parameter is never sent to another origin
        try:
            resp = self.session.request(method, url, params=params, json=json, headers=headers, timeout=timeout,
                                        allow_redirects=not keyed)
        except requests.exceptions.RetryError as exc:
            raise FeedError(source, f"gave up after {self.settings.retries} retries: {shown} ({_root(exc)})") from None
        except requests.exceptions.Timeout:
            raise FeedError(source, f"timed out after {self.settings.read_timeout_s:g} s: {shown}") from None
        except requests.exceptions.ConnectionError as exc:
            if "timeout" in _root(exc).lower():  # urllib3 reports a read timeout without retries left this way
                raise FeedError(source, f"timed out after {self.settings.read_timeout_s:g} s: {shown}") from None
            raise FeedError(source, f"cannot connect: {shown} ({_root(exc)})") from None
        except requests.exceptions.RequestException as exc:
            raise FeedError(source, f"request failed: {shown} ({type(exc).__name__})") from None
        fetched = now_utc()
        payload = Payload(source, shown, resp.status_code, resp.headers.get("Content-Type", ""), resp.content, fetched)
        if keyed and 300 <= resp.status_code < 400:
            raise FeedError(source, f"redirect refused: HTTP {resp.status_code} from {shown} (a request carrying an "
                                    "API key is not forwarded to another address)", resp.content)
        if not 200 <= resp.status_code < 300:
            extra = f" after {self.settings.retries} retries" if resp.status_code in RETRY_STATUSES else ""
            raise FeedError(source, f"HTTP {resp.status_code}{extra} from {shown}", resp.content)
        log.debug("fetched source=%s url=%s status=%s bytes=%d", source, shown, resp.status_code, len(resp.content))
        return payload

    def get(self, source: str, url: str, **kwargs) -> Payload:
        return self.request(source, "GET", url, **kwargs)

    def post(self, source: str, url: str, **kwargs) -> Payload:
        return self.request(source, "POST", url, **kwargs)


def _root(exc: BaseException) -> str:
    while exc.__context__ is not None and exc.__context__ is not exc:
        exc = exc.__context__
    return type(exc).__name__
