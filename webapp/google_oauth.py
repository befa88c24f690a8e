"""Google accounts connected through OAuth 2 (Authlib): offline access, the refresh token kept
encrypted, access tokens refreshed as they expire, and a revoked grant turned into a clear
"reconnect" state.

The flow does not depend on a browser session: ``authorize_url`` signs the workspace into the
``state`` parameter (valid 15 minutes), so a key holder (the API) or a signed-in user (the UI)
can start it and the browser that comes back to ``/google/callback`` finishes it.
"""

from __future__ import annotations

from typing import Any

import requests
from authlib.integrations.requests_client import OAuth2Session
from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select

from connectors.base import SourceError
from connectors.google_api import SCOPES

from .errors import ApiError
from .extensions import db
from .models import GoogleAccount
from .models.base import utcnow

SCOPE = " ".join(["email", *SCOPES])
STATE_SECONDS = 900


def enabled() -> bool:
    return bool(current_app.config.get("GOOGLE_CLIENT_ID"))


def _metadata() -> dict[str, Any]:
    """Google's endpoints, from its discovery document (fetched once per process)."""
    url = current_app.config["GOOGLE_OPENID_CONFIG_URL"]
    cache = current_app.extensions.setdefault("google.openid", {})
    if url not in cache:
        answer = requests.get(url, timeout=10)
        answer.raise_for_status()
        cache[url] = answer.json()
    return cache[url]


def _client(**kwargs: Any) -> OAuth2Session:
    config = current_app.config
    return OAuth2Session(config["GOOGLE_CLIENT_ID"], config["GOOGLE_CLIENT_SECRET"],
                         scope=SCOPE, redirect_uri=_redirect_uri(), **kwargs)


def _redirect_uri() -> str:
    return current_app.config["PUBLIC_URL"].rstrip("/") + "/google/callback"


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="google-oauth")


def authorize_url(workspace_id: int) -> str:
    if not enabled():
        raise ApiError(400, "oauth_unavailable", "Google sign-in is not configured on this "
                       "server (GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET)")
    state = _signer().dumps({"ws": workspace_id})
    url, _ = _client().create_authorization_url(
        _metadata()["authorization_endpoint"], state=state, access_type="offline",
        prompt="consent", include_granted_scopes="true")
    return url


def finish(code: str, state: str) -> GoogleAccount:
    """The callback: check the state, trade the code for tokens, keep them encrypted."""
    try:
        workspace_id = _signer().loads(state, max_age=STATE_SECONDS)["ws"]
    except (BadSignature, KeyError, TypeError):
        raise ApiError(400, "invalid_state", "this sign-in link is invalid or expired; start "
                       "connecting the Google account again") from None
    meta = _metadata()
    client = _client()
    token = dict(client.fetch_token(meta["token_endpoint"], code=code,
                                    grant_type="authorization_code"))
    email = client.get(meta["userinfo_endpoint"], timeout=10).json().get("email", "")
    account = db.session.scalar(select(GoogleAccount).where(
        GoogleAccount.workspace_id == workspace_id, GoogleAccount.email == email))
    if account is None:
        account = GoogleAccount(workspace_id=workspace_id, email=email)
        db.session.add(account)
    if not token.get("refresh_token") and account.token_encrypted:
        token["refresh_token"] = account.token.get("refresh_token")  # Google sends it once
    account.token, account.status, account.updated_at = token, "connected", utcnow()
    db.session.commit()
    return account


def find_account(workspace_id: int, account_id: int | None) -> GoogleAccount:
    query = select(GoogleAccount).where(GoogleAccount.workspace_id == workspace_id)
    if account_id is not None:
        query = query.where(GoogleAccount.id == account_id)
    account = db.session.scalar(query.order_by(GoogleAccount.id.desc()).limit(1))
    if account is None:
        raise SourceError("google_account_missing", "auth: oauth needs a connected Google "
                          "account: connect one first (POST /api/v1/google/connect)",
                          status=422, reconnect=True)
    if account.status != "connected":
        raise _reconnect(account)
    return account


def session_for(workspace_id: int, account_id: int | None) -> OAuth2Session:
    """An authorised session for a connected account; refreshed tokens are saved."""
    if not enabled():
        raise SourceError("oauth_unavailable", "Google sign-in is not configured on this "
                          "server", status=400)
    account = find_account(workspace_id, account_id)
    account_id = account.id

    def save(token: dict[str, Any], refresh_token: str | None = None,
             access_token: str | None = None) -> None:
        row = db.session.get(GoogleAccount, account_id)
        row.token, row.updated_at = {**row.token, **dict(token)}, utcnow()
        db.session.commit()

    endpoint = _metadata()["token_endpoint"]
    return _RefreshingSession(account_id, endpoint, _client(
        token=account.token, token_endpoint=endpoint, update_token=save))


class _RefreshingSession:
    """Proxies the Authlib session (which refreshes tokens as they expire). A 401 before
    then (Google ended the access token early) refreshes once and tries again; a refused
    refresh marks the account for reconnecting."""

    def __init__(self, account_id: int, token_endpoint: str, session: OAuth2Session):
        self._account_id = account_id
        self._endpoint = token_endpoint
        self._session = session
        self.headers = session.headers

    def request(self, *args: Any, **kwargs: Any):
        try:
            response = self._session.request(*args, **kwargs)
            if response.status_code != 401:
                return response
            self._session.refresh_token(self._endpoint)
            return self._session.request(*args, **kwargs)
        except Exception as exc:
            if type(exc).__module__.startswith("authlib"):
                raise _reconnect(mark_reconnect(self._account_id)) from None
            raise


def mark_reconnect(account_id: int) -> GoogleAccount:
    account = db.session.get(GoogleAccount, account_id)
    account.status = "reconnect"
    db.session.commit()
    return account


def _reconnect(account: GoogleAccount) -> SourceError:
    return SourceError("google_reconnect", f"Google refused the authorisation of "
                       f"{account.email} (revoked or expired): reconnect the Google account",
                       status=401, reconnect=True)


def account_object(account: GoogleAccount) -> dict[str, Any]:
    from .models.base import iso

    return {"id": account.id, "email": account.email, "status": account.status,
            "created_at": iso(account.created_at), "updated_at": iso(account.updated_at)}
