"""Pixelmerge Sheets emulator — NOT Google: a local stand-in for the Google Sheets API v4
subset Pixelmerge uses, with Google's token endpoints, a web view and fault switches, for
tests and local demos.

``create_emulator(...)`` builds a standalone Flask app (it shares nothing with
``webapp.create_app``): ``/v4/spreadsheets/...`` (the API), ``/token``, ``/o/oauth2/v2/auth``,
``/.well-known/openid-configuration``, ``/oauth2/v3/userinfo``, ``/revoke`` (Google's token
endpoints), ``/_emulator/...`` (the admin API: JSON, no authentication — bind it to loopback)
and ``/`` (the web view). ``pixelmerge sheets-emulator`` serves it."""

from __future__ import annotations

import json
import os
import secrets
import time
from itertools import count
from pathlib import Path
from typing import Any

from flask import Flask, g, request
from werkzeug.exceptions import HTTPException

from .context import EXTENSION, SpreadsheetIdConverter
from .errors import AdminError, GoogleError, OAuthError
from .store import State

LOGGED = ("/v4/", "/token")


def create_emulator(*, public_url: str | None = None, data_path: str | os.PathLike | None = None,
                    quota_per_minute: int | None = None, client_id: str | None = None,
                    client_secret: str | None = None) -> Flask:
    """The emulator as a Flask app.

    ``public_url`` (``http://HOST:PORT``) is how clients reach it: the token URI of its key
    files and the ``spreadsheetUrl`` of its spreadsheets (default: the request's host).
    ``data_path`` keeps spreadsheets, service accounts and grants in a JSON file.
    ``client_id``/``client_secret`` restrict the OAuth clients it accepts (default: any)."""
    from . import admin, api, oauth, views

    app = Flask(__name__, static_folder=None)
    app.config.update(EMULATOR_PUBLIC_URL=public_url.rstrip("/") if public_url else None,
                      EMULATOR_CLIENT_ID=client_id, EMULATOR_CLIENT_SECRET=client_secret,
                      EMULATOR_CSRF_TOKEN=secrets.token_urlsafe(32))
    app.json.sort_keys = False
    app.url_map.converters["sid"] = SpreadsheetIdConverter
    app.extensions[EXTENSION] = State(data_path=data_path, quota_per_minute=quota_per_minute)
    for blueprint in (api.bp, oauth.bp, admin.bp, views.bp):
        app.register_blueprint(blueprint)
    _errors(app)
    _request_log(app)
    return app


def _errors(app: Flask) -> None:
    @app.errorhandler(GoogleError)
    def google_error(exc: GoogleError):
        return exc.body(), exc.code, exc.headers

    @app.errorhandler(OAuthError)
    def oauth_error(exc: OAuthError):
        return exc.body(), exc.code

    @app.errorhandler(AdminError)
    def admin_error(exc: AdminError):
        return {"error": str(exc)}, exc.code

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = exc.code or 500
        if request.path.startswith("/v4/"):
            return GoogleError(code, None if code in (404, 500) else exc.description).body(), code
        if request.path.startswith("/_emulator/"):
            return {"error": exc.description}, code
        return exc

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        app.logger.exception("the emulator failed on %s %s", request.method, request.path)
        return GoogleError(500).body(), 500


def _request_log(app: Flask) -> None:
    numbers = count(1)

    @app.after_request
    def record(response):
        if request.path.startswith(LOGGED):
            app.extensions[EXTENSION].record({
                "id": next(numbers), "time": time.time(), "method": request.method,
                "path": request.path, "query": request.query_string.decode("latin-1"),
                "status": response.status_code, "principal": g.get("principal"),
                "kind": g.get("kind")})
        return response


def write_credentials(app: Flask, path: str | os.PathLike, public_url: str) -> dict[str, Any]:
    """Write the first service account's JSON key file (mode 0600); returns the key."""
    account = app.extensions[EXTENSION].auth.service_accounts[0]
    key = account.key_file(public_url.rstrip("/") + "/token")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(key, file, indent=2)
    return key


def banner(public_url: str, credentials: str | os.PathLike, client_email: str) -> str:
    return "\n".join([
        "Pixelmerge Sheets emulator — NOT Google.",
        f"Sheets API: {public_url}",
        f"  set GOOGLE_SHEETS_API_URL={public_url} "
        f"GOOGLE_SERVICE_ACCOUNT_FILE={Path(credentials).resolve()}",
        f"  service account: {client_email} (share spreadsheets with it)",
        f"  OAuth for users: GOOGLE_OPENID_CONFIG_URL={public_url}/.well-known/openid-configuration"
        " (any client id and secret unless --client-id/--client-secret)",
        f"  web view: {public_url}/   admin API: {public_url}/_emulator/ "
        "(no authentication: keep it on loopback)",
    ])


def public_url_for(host: str, port: int) -> str:
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def run(host: str, port: int, *, credentials: str | os.PathLike, public_url: str | None = None,
        echo: Any = print, **options: Any) -> None:
    """Serve the emulator with werkzeug (threaded: it is a dev tool) until interrupted;
    ``options`` go to :func:`create_emulator`."""
    from werkzeug.serving import make_server

    url = public_url or public_url_for(host, port)
    app = create_emulator(public_url=url, **options)
    key = write_credentials(app, credentials, url)
    server = make_server(host, port, app, threaded=True)
    echo(banner(url, credentials, key["client_email"]))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
