"""``GET /me``: who the key belongs to — the connection test for Zapier and Make."""

from __future__ import annotations

from flask import Blueprint

from .. import usage
from ..auth import authenticate
from ..extensions import db
from ..models import ApiKey
from ..models.base import iso
from ..openapi import operation
from ..schemas import MeOut
from .common import current_workspace

bp = Blueprint("me", __name__)


@operation(bp, "GET", "/me", summary="Who this API key belongs to", tag="account",
           responses={200: MeOut}, errors=(401,))
def get_me():
    """The workspace, the key's scopes and the quota left; to keys with the admin scope also
    the workspace's signing secret (for signed /u/ URLs)."""
    principal = authenticate()
    workspace = current_workspace()
    key = db.session.get(ApiKey, principal.key_id)
    body = {
        "workspace": {"id": workspace.id, "name": workspace.name},
        "key": {"id": key.id, "name": key.name, "prefix": key.prefix,
                "scopes": key.scope_list, "expires_at": iso(key.expires_at)},
        "user": {"id": key.user.id, "email": key.user.email} if key.user else None,
        "usage": usage.summary(workspace),
        "signing_secret": workspace.signing_secret if "admin" in principal.scopes else None,
    }
    return MeOut.model_validate(body).model_dump(mode="json")
