"""gspread pointed at a configurable Sheets API, with a bounded back-off.

gspread builds its URLs from ``https://sheets.googleapis.com``; :class:`SheetsHTTPClient` moves
them to ``GOOGLE_SHEETS_API_URL`` (the emulator, in tests and local demos), counts the requests
it makes (a sync's run log reports them) and retries 429 and 5xx answers a bounded number of
times with exponential delays, honouring ``Retry-After``. gspread's own ``BackOffHTTPClient``
is not used: it retries for ever and shares its counter between threads.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gspread
from gspread.exceptions import APIError
from gspread.http_client import HTTPClient
from requests import Response, Session
from requests.exceptions import RequestException

GOOGLE_SHEETS_API_URL = "https://sheets.googleapis.com"
SCOPES = ("https://www.googleapis.com/auth/spreadsheets",)


@dataclass(frozen=True)
class Backoff:
    """How often and how long to wait again: ``retries`` more attempts, the n-th after about
    ``base * 2**n`` seconds (with jitter), never longer than ``cap`` for one wait."""

    retries: int = 5
    base: float = 1.0
    cap: float = 32.0

    def delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after and retry_after.isdigit():
            return min(float(retry_after), self.cap)
        return min(self.base * 2 ** attempt * (0.75 + random.random() / 2), self.cap)


class SheetsHTTPClient(HTTPClient):
    """gspread's HTTP client, aimed at ``api_url``, counting requests, retrying a bounded
    number of times."""

    def __init__(self, auth: Any = None, session: Session | None = None, *,
                 api_url: str = GOOGLE_SHEETS_API_URL, backoff: Backoff = Backoff(),
                 timeout: float = 30.0, sleep: Callable[[float], None] = time.sleep):
        super().__init__(auth, session=session)
        self.api_url = api_url.rstrip("/")
        self.backoff = backoff
        self.sleep = sleep
        self.requests = 0
        self.set_timeout(timeout)

    def request(self, method: str, endpoint: str, *args: Any, **kwargs: Any) -> Response:
        if endpoint.startswith(GOOGLE_SHEETS_API_URL):
            endpoint = self.api_url + endpoint[len(GOOGLE_SHEETS_API_URL):]
        attempt = 0
        while True:
            self.requests += 1
            try:
                return super().request(method, endpoint, *args, **kwargs)
            except APIError as exc:
                if not _transient(exc.code) or attempt >= self.backoff.retries:
                    raise
                wait = self.backoff.delay(attempt, exc.response.headers.get("Retry-After"))
            except RequestException:
                if attempt >= self.backoff.retries:
                    raise
                wait = self.backoff.delay(attempt, None)
            self.sleep(wait)
            attempt += 1


def _transient(code: int) -> bool:
    return code in (408, 429) or code >= 500


def client(*, credentials: Any = None, session: Session | None = None,
           api_url: str = GOOGLE_SHEETS_API_URL, backoff: Backoff = Backoff(),
           timeout: float = 30.0) -> gspread.Client:
    """A gspread client on ``api_url``: pass google-auth ``credentials`` (a service account) or
    an authorised requests ``session`` (an OAuth user's)."""
    if credentials is not None and api_url.rstrip("/") != GOOGLE_SHEETS_API_URL:
        no_boundary_lookup(credentials)
    http = SheetsHTTPClient(credentials, session=session, api_url=api_url, backoff=backoff,
                            timeout=timeout)
    return gspread.Client(None, http_client=lambda auth, session=None: http)


def no_boundary_lookup(credentials: Any) -> None:
    """Recent google-auth looks up a "regional access boundary" at iamcredentials.googleapis.com
    after each token refresh, in a background thread, sending the token. Against anything but
    Google (the emulator) that would send its tokens to Google: a boundary known up front makes
    google-auth skip the lookup (the setter is the one gcloud relies on; older google-auth has
    none and does no lookup)."""
    setter = getattr(credentials, "_set_regional_access_boundary", None)
    if setter is not None:
        expiry = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(days=3650)
        setter({"encodedLocations": "0x0", "expiry": expiry})


def service_account_credentials(info: dict[str, Any]) -> Any:
    """google-auth credentials from a service account's JSON key; its ``token_uri`` decides
    where the token exchange happens (Google's, or the emulator's)."""
    from google.oauth2 import service_account

    return service_account.Credentials.from_service_account_info(info, scopes=list(SCOPES))
