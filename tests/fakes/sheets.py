"""The Sheets emulator for tests: ``SheetsEmulator`` serves ``webapp.sheets_emulator`` on a
free loopback port in a thread and wraps its admin API; ``client()`` gives a real gspread
client (through ``connectors.google_api``) authenticated by real google-auth against it."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
import services  # noqa: I001  (tests/ is on the path)
from werkzeug.serving import make_server

from connectors import google_api
from webapp.sheets_emulator import create_emulator

USER_SCOPE = "openid email https://www.googleapis.com/auth/spreadsheets"
REDIRECT_URI = "http://127.0.0.1/oauth/callback"  # never visited: the code is read off Location
FAST = google_api.Backoff(retries=3, base=0.01, cap=0.1)


class EmulatorError(AssertionError):
    """The admin API refused a call (a mistake in the test)."""


class SheetsEmulator:
    """``with SheetsEmulator() as sheets:`` or ``start()``/``stop()``."""

    def __init__(self, *, data_path: str | Path | None = None,
                 quota_per_minute: int | None = None, client_id: str | None = None,
                 client_secret: str | None = None, port: int | None = None):
        self.port = port or services.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_emulator(public_url=self.url, data_path=data_path,
                                   quota_per_minute=quota_per_minute, client_id=client_id,
                                   client_secret=client_secret)
        self.http = requests.Session()
        self._server = None
        self._thread: threading.Thread | None = None
        self._sessions: list[requests.Session] = []

    # lifecycle

    def start(self) -> SheetsEmulator:
        self._server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.close_clients()
        self.http.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> SheetsEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def close_clients(self) -> None:
        """Close the HTTP sessions of the clients this handle made."""
        while self._sessions:
            self._sessions.pop().close()

    # the admin API

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """``/_emulator{path}``; raises :class:`EmulatorError` on a refusal."""
        kwargs = {"json": body if body is not None else {}} if method != "GET" else {}
        response = self.http.request(method, f"{self.url}/_emulator{path}", timeout=10,
                                     **kwargs)
        if not response.ok:
            raise EmulatorError(f"{method} /_emulator{path}: {response.status_code} "
                                f"{response.text}")
        return response.json()

    def reset(self) -> None:
        """Forget spreadsheets, tokens, faults, quota and the log (service accounts stay)."""
        self.close_clients()
        self.admin("POST", "/reset")

    @property
    def service_account_key(self) -> dict[str, Any]:
        """The JSON key of the emulator's service account (token_uri on the emulator)."""
        return self.admin("GET", "/service-accounts")["service_accounts"][0]["key"]

    @property
    def service_account_email(self) -> str:
        return self.service_account_key["client_email"]

    def create_service_account(self, name: str) -> dict[str, Any]:
        """Another service account (6-30 letters, digits, dashes); returns its JSON key."""
        return self.admin("POST", "/service-accounts", {"name": name})["key"]

    def write_credentials(self, path: str | Path, key: dict | None = None) -> Path:
        """Write a service account's JSON key file (for GOOGLE_SERVICE_ACCOUNT_FILE)."""
        target = Path(path)
        target.write_text(json.dumps(key or self.service_account_key))
        return target

    def create_spreadsheet(self, title: str = "Pixelmerge test",
                           sheets: dict[str, Any] | None = None, *,
                           shared_with: list[str] | dict[str, str] | None = None,
                           rows: int = 1000, cols: int = 26,
                           id: str | None = None) -> dict[str, Any]:
        """-> ``{"id", "url", "title", "shared_with", "sheets"}``. ``sheets`` maps titles to
        rows of admin cell forms (or to ``{"values", "rows", "cols"}``); shared with the
        service account unless ``shared_with`` says otherwise."""
        body = {"title": title, "sheets": sheets or {"Sheet1": []}, "rows": rows, "cols": cols,
                "shared_with": [self.service_account_email] if shared_with is None
                else shared_with}
        if id:
            body["id"] = id
        return self.admin("POST", "/spreadsheets", body)

    def spreadsheet(self, sid: str) -> dict[str, Any]:
        return self.admin("GET", f"/spreadsheets/{sid}")

    def delete_spreadsheet(self, sid: str) -> None:
        self.admin("DELETE", f"/spreadsheets/{sid}")

    def add_sheet(self, sid: str, title: str, values: list[list[Any]] | None = None, *,
                  rows: int = 1000, cols: int = 26) -> dict[str, Any]:
        return self.admin("POST", f"/spreadsheets/{sid}/sheets",
                          {"title": title, "values": values or [], "rows": rows, "cols": cols})

    def cells(self, sid: str, range: str = "") -> dict[str, Any]:
        """``{"range", "values" (formatted), "formulas", "cells" (stored forms)}``."""
        return self.http.get(f"{self.url}/_emulator/spreadsheets/{sid}/cells",
                             params={"range": range}, timeout=10).json()

    def values(self, sid: str, range: str = "") -> list[list[str]]:
        """The range's formatted values, trimmed like the API's (default: the first sheet)."""
        return self.cells(sid, range)["values"]

    def set_cells(self, sid: str, range: str, values: list[list[Any]]) -> dict[str, Any]:
        """Seed cells from ``range``'s top-left: plain values as if typed, or
        ``{"value", "formatted"}`` / ``{"formula", "value"}`` forms; the grid grows."""
        return self.admin("POST", f"/spreadsheets/{sid}/cells",
                          {"range": range, "values": values})

    def share(self, sid: str, email: str, role: str = "writer") -> None:
        self.admin("POST", f"/spreadsheets/{sid}/share", {"email": email, "role": role})

    def unshare(self, sid: str, email: str) -> None:
        self.admin("POST", f"/spreadsheets/{sid}/unshare", {"email": email})

    def revoke_user(self, email: str) -> int:
        return self.admin("POST", f"/users/{email}/revoke")["revoked_grants"]

    def expire_tokens(self) -> int:
        return self.admin("POST", "/tokens/expire")["expired"]

    def fault(self, status: int, count: int = 1, *, methods: list[str] | None = None,
              paths: str | list[str] | None = None, retry_after: int | None = None) -> None:
        """The next ``count`` matching /v4 requests answer ``status`` (Google's body)."""
        self.admin("POST", "/faults", {"status": status, "count": count, "methods": methods,
                                       "paths": paths, "retry_after": retry_after})

    def clear_faults(self) -> None:
        self.admin("DELETE", "/faults")

    def set_quota(self, per_minute: int | None) -> None:
        self.admin("POST", "/quota", {"per_minute": per_minute})

    def reset_quota(self) -> None:
        self.admin("POST", "/quota/reset")

    def requests(self, prefix: str = "/v4/") -> list[dict[str, Any]]:
        """Logged requests whose path starts with ``prefix`` (``""``: all, with /token):
        ``{"id", "time", "method", "path", "query", "status", "principal", "kind"}``."""
        log = self.admin("GET", "/requests")["requests"]
        return [entry for entry in log if entry["path"].startswith(prefix)]

    def clear_requests(self) -> None:
        self.admin("DELETE", "/requests")

    # clients

    def client(self, *, key: dict[str, Any] | None = None,
               session: requests.Session | None = None,
               backoff: google_api.Backoff = FAST) -> Any:
        """A real gspread client on the emulator: as the service account (or ``key``), or
        through an authorised ``session`` (an OAuth user's)."""
        credentials = None
        if session is None:
            credentials = google_api.service_account_credentials(key or self.service_account_key)
        client = google_api.client(credentials=credentials, session=session, api_url=self.url,
                                   backoff=backoff, timeout=10)
        self._sessions.append(client.http_client.session)
        return client

    @property
    def discovery_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    def authorize(self, email: str, *, client_id: str = "pixelmerge-test",
                  redirect_uri: str = REDIRECT_URI, scope: str = USER_SCOPE,
                  offline: bool = True, state: str = "state", **extra: str) -> str:
        """Post the sign-in form as ``email``; returns the authorization code."""
        form = {"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code",
                "scope": scope, "state": state, "login_hint": email,
                "access_type": "offline" if offline else "online", **extra}
        response = self.http.post(f"{self.url}/o/oauth2/v2/auth", data=form,
                                  allow_redirects=False, timeout=10)
        if response.status_code != 302:
            raise EmulatorError(f"sign-in refused: {response.status_code} {response.text}")
        return parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]

    def user_token(self, email: str, *, client_id: str = "pixelmerge-test",
                   client_secret: str = "secret", **kwargs: Any) -> dict[str, Any]:
        """Sign in and exchange the code: ``{"access_token", "refresh_token", ...}``."""
        redirect_uri = kwargs.pop("redirect_uri", REDIRECT_URI)
        code = self.authorize(email, client_id=client_id, redirect_uri=redirect_uri, **kwargs)
        response = self.http.post(f"{self.url}/token", timeout=10, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "client_id": client_id, "client_secret": client_secret})
        if not response.ok:
            raise EmulatorError(f"token exchange refused: {response.text}")
        return response.json()

    def user_session(self, email: str, **kwargs: Any) -> requests.Session:
        """A requests session carrying a fresh access token of ``email``."""
        token = self.user_token(email, **kwargs)["access_token"]
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        self._sessions.append(session)
        return session


