"""API-key authentication: ``Authorization: Bearer <key>``, scopes, expiry, last use."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from flask import g, request
from sqlalchemy import update

from .errors import ApiError
from .extensions import db
from .models import ApiKey
from .models.apikey import digest
from .models.base import utcnow

CACHE_SECONDS = 5.0  # how long a process trusts a key lookup; revocation elsewhere waits this long
LAST_USED_EVERY = 60.0  # seconds between writes of last_used_at for one key


@dataclass(frozen=True)
class Principal:
    key_id: int
    workspace_id: int
    scopes: frozenset[str]
    expires_at: dt.datetime | None
    revoked: bool
    last_used_at: dt.datetime | None


_cache: dict[str, tuple[float, Principal | None]] = {}


def forget(key_hash: str | None = None) -> None:
    """Drop cached lookups (after a revocation in this process)."""
    if key_hash is None:
        _cache.clear()
    else:
        _cache.pop(key_hash, None)


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def authenticate() -> Principal:
    if getattr(g, "principal", None) is not None:
        return g.principal
    token = bearer_token()
    if token is None:
        raise ApiError(401, "unauthorized",
                       "send your API key in the header 'Authorization: Bearer <key>'",
                       headers={"WWW-Authenticate": 'Bearer realm="pixelmerge"'})
    principal = _lookup(digest(token))
    if principal is None:
        raise ApiError(401, "invalid_api_key", "this API key is not valid")
    if principal.revoked:
        raise ApiError(401, "api_key_revoked", "this API key was revoked")
    if principal.expires_at is not None and principal.expires_at <= utcnow():
        raise ApiError(401, "api_key_expired", "this API key has expired; create a new one")
    _touch(principal)
    g.principal = principal
    return principal


def require(scope: str) -> Principal:
    principal = authenticate()
    if scope not in principal.scopes and "admin" not in principal.scopes:
        raise ApiError(403, "insufficient_scope",
                       f"this API key lacks the '{scope}' scope",
                       details={"required": scope, "granted": sorted(principal.scopes)})
    return principal


def _lookup(key_hash: str) -> Principal | None:
    now = time.monotonic()
    hit = _cache.get(key_hash)
    if hit is not None and now - hit[0] < CACHE_SECONDS:
        return hit[1]
    key = db.session.scalar(db.select(ApiKey).where(ApiKey.key_hash == key_hash))
    principal = None if key is None else Principal(
        key.id, key.workspace_id, frozenset(key.scope_list), key.expires_at,
        key.revoked_at is not None, key.last_used_at)
    if len(_cache) > 10_000:
        _cache.clear()
    _cache[key_hash] = (now, principal)
    return principal


def _touch(principal: Principal) -> None:
    """Record the time of use, at most once a minute per key (a write per request would cost
    more than the request)."""
    now = utcnow()
    last = principal.last_used_at
    if last is not None and (now - last).total_seconds() < LAST_USED_EVERY:
        return
    db.session.execute(update(ApiKey).where(ApiKey.id == principal.key_id)
                       .values(last_used_at=now))
    db.session.commit()
    for key_hash, (stamp, cached) in list(_cache.items()):
        if cached is not None and cached.key_id == principal.key_id:
            _cache[key_hash] = (stamp, Principal(**{**cached.__dict__, "last_used_at": now}))
