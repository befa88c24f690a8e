"""Google's token endpoints, emulated: the service-account JWT-bearer grant google-auth uses,
and OAuth 2 / OpenID Connect for users (discovery document, a sign-in page that asks only for
an email, authorization codes, refresh tokens, revocation, userinfo, ID tokens)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any
from urllib.parse import unquote, urlencode

from flask import Blueprint, current_app, g, redirect, render_template, request
from werkzeug.wrappers import Response

from .auth import (
    ACCESS_TOKEN_SECONDS,
    CODE_SECONDS,
    Code,
    Grant,
    JWTError,
    jwk,
    sign_jwt,
    subject,
    verify_assertion,
)
from .context import base_url, state
from .errors import OAuthError

bp = Blueprint("oauth", __name__)
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
AUTH_PARAMS = ("client_id", "redirect_uri", "response_type", "scope", "state", "access_type",
               "prompt", "nonce", "login_hint", "code_challenge", "code_challenge_method")


@bp.get("/.well-known/openid-configuration")
def discovery() -> dict[str, Any]:
    base = base_url()
    return {"issuer": base, "authorization_endpoint": f"{base}/o/oauth2/v2/auth",
            "token_endpoint": f"{base}/token", "userinfo_endpoint": f"{base}/oauth2/v3/userinfo",
            "revocation_endpoint": f"{base}/revoke", "jwks_uri": f"{base}/oauth2/v3/certs",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_post",
                                                      "client_secret_basic"],
            "claims_supported": ["aud", "email", "email_verified", "exp", "iat", "iss", "sub"],
            "code_challenge_methods_supported": ["plain", "S256"],
            "grant_types_supported": ["authorization_code", "refresh_token", JWT_BEARER]}


@bp.get("/oauth2/v3/certs")
def certs() -> dict[str, Any]:
    auth = state().auth
    return {"keys": [jwk(auth.issuer_key, auth.issuer_kid)]}


@bp.get("/o/oauth2/v2/auth")
def sign_in() -> tuple[str, int] | str:
    params = {name: request.args.get(name, "") for name in AUTH_PARAMS}
    problem = _auth_request_problem(params)
    if problem:
        return render_template("consent.html", params=params, problem=problem), 400
    return render_template("consent.html", params=params, problem=None)


@bp.post("/o/oauth2/v2/auth")
def consent() -> Response | tuple[str, int]:
    """The sign-in form's answer (or a test's POST): a code for the email, sent back to the
    client's ``redirect_uri``."""
    params = {name: request.form.get(name, "") for name in AUTH_PARAMS}
    problem = _auth_request_problem(params)
    email = (request.form.get("email") or params["login_hint"]).strip()
    if not problem and "deny" not in request.form and "@" not in email:
        problem = "Enter an email address."
    if problem:
        return render_template("consent.html", params=params, problem=problem), 400
    if "deny" in request.form:
        return _back(params, {"error": "access_denied"})
    code = "4/0A" + secrets.token_urlsafe(32)
    with state().changing():
        state().auth.codes[code] = Code(
            email, params["client_id"], params["redirect_uri"], params["scope"],
            params["access_type"] == "offline", params["nonce"] or None,
            params["code_challenge"] or None, params["code_challenge_method"] or None,
            time.time() + CODE_SECONDS)
    return _back(params, {"code": code, "scope": params["scope"]})


def _auth_request_problem(params: dict[str, str]) -> str | None:
    configured = current_app.config.get("EMULATOR_CLIENT_ID")
    if not params["client_id"] or configured and params["client_id"] != configured:
        return "Error 401: invalid_client. The OAuth client was not found."
    if not params["redirect_uri"].startswith(("http://", "https://")):
        return "Error 400: invalid_request. Missing or invalid redirect_uri."
    if params["response_type"] != "code":
        return "Error 400: unsupported_response_type. Only response_type=code is emulated."
    return None


def _back(params: dict[str, str], answer: dict[str, str]) -> Response:
    if params["state"]:
        answer["state"] = params["state"]
    uri = params["redirect_uri"]
    return redirect(uri + ("&" if "?" in uri else "?") + urlencode(answer), 302)


@bp.post("/token")
def token() -> dict[str, Any]:
    grant_type = request.form.get("grant_type", "")
    handlers = {JWT_BEARER: _jwt_bearer, "authorization_code": _authorization_code,
                "refresh_token": _refresh_token}
    if grant_type not in handlers:
        raise OAuthError("unsupported_grant_type", f"Invalid grant_type: {grant_type}")
    return handlers[grant_type]()


def _jwt_bearer() -> dict[str, Any]:
    try:
        email, scopes = verify_assertion(state().auth, request.form.get("assertion", ""),
                                         base_url() + "/token")
    except JWTError as exc:
        raise OAuthError("invalid_grant", str(exc)) from exc
    g.principal = email
    with state().changing():
        access = state().auth.issue(email, scopes)
    return {"access_token": access, "expires_in": ACCESS_TOKEN_SECONDS - 1,
            "token_type": "Bearer"}


def _client() -> str:
    """The authenticated client's id (HTTP Basic or form fields), checked against the ones
    the emulator was configured with (any, by default)."""
    client_id, secret = request.form.get("client_id"), request.form.get("client_secret")
    if request.authorization and request.authorization.type == "basic":
        client_id = unquote(request.authorization.username or "")
        secret = unquote(request.authorization.password or "")
    if not client_id:
        raise OAuthError("invalid_request", "Could not determine client ID from request.")
    config = current_app.config
    if config.get("EMULATOR_CLIENT_ID") and client_id != config["EMULATOR_CLIENT_ID"]:
        raise OAuthError("invalid_client", "The OAuth client was not found.", 401)
    expected = config.get("EMULATOR_CLIENT_SECRET")
    if expected and not hmac.compare_digest((secret or "").encode(), expected.encode()):
        raise OAuthError("invalid_client", "Unauthorized", 401)
    return client_id


def _authorization_code() -> dict[str, Any]:
    client_id = _client()
    with state().changing():
        code = state().auth.codes.pop(request.form.get("code", ""), None)
        if code is None or code.expires_at < time.time() or code.client_id != client_id:
            raise OAuthError("invalid_grant", "Malformed auth code.")
        if code.redirect_uri != request.form.get("redirect_uri"):
            raise OAuthError("redirect_uri_mismatch", "Bad Request")
        _check_pkce(code, request.form.get("code_verifier"))
        g.principal = code.email
        grant_id = secrets.token_hex(16)
        refresh = "1//0" + secrets.token_urlsafe(48) if code.offline else None
        state().auth.grants[grant_id] = Grant(code.email, client_id, code.scope, refresh)
        answer = _access(grant_id, code.nonce)
    if refresh:
        answer["refresh_token"] = refresh
    return answer


def _check_pkce(code: Code, verifier: str | None) -> None:
    if not code.code_challenge:
        return
    if not verifier:
        raise OAuthError("invalid_grant", "Missing code verifier.")
    if code.code_challenge_method == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        verifier = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    if not hmac.compare_digest(verifier, code.code_challenge):
        raise OAuthError("invalid_grant", "Invalid code verifier.")


def _access(grant_id: str, nonce: str | None = None) -> dict[str, Any]:
    grant = state().auth.grants[grant_id]
    access = state().auth.issue(grant.email, grant.scope.split(), grant_id)
    answer = {"access_token": access, "expires_in": ACCESS_TOKEN_SECONDS - 1,
              "scope": grant.scope, "token_type": "Bearer"}
    if "openid" in grant.scope.split():
        answer["id_token"] = _id_token(grant, nonce)
    return answer


def _id_token(grant: Grant, nonce: str | None) -> str:
    now = int(time.time())
    claims = {"iss": base_url(), "azp": grant.client_id, "aud": grant.client_id,
              "sub": subject(grant.email), "email": grant.email, "email_verified": True,
              "iat": now, "exp": now + ACCESS_TOKEN_SECONDS}
    if nonce:
        claims["nonce"] = nonce
    auth = state().auth
    return sign_jwt(claims, auth.issuer_key, auth.issuer_kid)


def _refresh_token() -> dict[str, Any]:
    client_id = _client()
    with state().changing():
        grant_id = state().auth.grant_of_refresh_token(request.form.get("refresh_token", ""))
        if grant_id is None:
            raise OAuthError("invalid_grant", "Token has been expired or revoked.")
        if state().auth.grants[grant_id].client_id != client_id:
            raise OAuthError("unauthorized_client", "Unauthorized")
        g.principal = state().auth.grants[grant_id].email
        return _access(grant_id)


@bp.route("/oauth2/v3/userinfo", methods=["GET", "POST"])
def userinfo() -> dict[str, Any]:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    with state().lock:
        found = state().auth.lookup(value.strip()) if scheme.lower() == "bearer" else None
    if found is None:
        raise OAuthError("invalid_request", "Invalid Credentials", 401)
    return {"sub": subject(found.principal), "email": found.principal, "email_verified": True}


@bp.post("/revoke")
def revoke() -> tuple[str, int]:
    """Revoking an access or a refresh token ends the whole grant, as at Google."""
    value = request.values.get("token", "")
    auth = state().auth
    with state().changing():
        access = auth.access_tokens.get(value)
        grant_id = access.grant if access else auth.grant_of_refresh_token(value)
        if access is None and grant_id is None:
            raise OAuthError("invalid_token", "Token expired or revoked")
        if grant_id is not None:
            auth.revoke_grant(grant_id)
        auth.access_tokens.pop(value, None)
    return "", 200
