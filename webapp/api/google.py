"""Google accounts connected through OAuth: ``POST /google/connect`` gives the sign-in link;
``GET /google/accounts`` and ``DELETE /google/accounts/{id}``."""

from __future__ import annotations

from flask import Blueprint, Response
from sqlalchemy import select

from .. import google_oauth
from ..auth import authenticate
from ..errors import not_found
from ..extensions import db
from ..models import GoogleAccount
from ..openapi import operation
from ..schemas import GoogleAccountList, GoogleConnectOut

bp = Blueprint("google", __name__)


@operation(bp, "POST", "/google/connect", summary="Start connecting a Google account",
           tag="sources", scope="sources", responses={200: GoogleConnectOut},
           errors=(400, 401, 403))
def connect():
    """Open ``authorize_url`` in a browser within 15 minutes; after the user allows access
    the account appears in ``GET /google/accounts`` and sources can use ``auth: oauth``."""
    return {"authorize_url": google_oauth.authorize_url(authenticate().workspace_id)}


@operation(bp, "GET", "/google/accounts", summary="Connected Google accounts",
           tag="sources", scope="sources", responses={200: GoogleAccountList})
def list_accounts():
    """``status: reconnect`` means Google refused the stored authorisation (revoked or
    expired): connect the account again."""
    found = db.session.scalars(select(GoogleAccount).where(
        GoogleAccount.workspace_id == authenticate().workspace_id)
        .order_by(GoogleAccount.id.desc())).all()
    return {"data": [google_oauth.account_object(a) for a in found]}


@operation(bp, "DELETE", "/google/accounts/<int:account_id>",
           summary="Disconnect a Google account", tag="sources", scope="sources",
           responses={204: None}, errors=(401, 403, 404))
def delete_account(account_id: int):
    account = db.session.get(GoogleAccount, account_id)
    if account is None or account.workspace_id != authenticate().workspace_id:
        raise not_found("google_account", account_id)
    db.session.delete(account)
    db.session.commit()
    return Response(status=204)
