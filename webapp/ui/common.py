"""Lookups and small helpers shared by the UI areas; the lookups own the tenant checks."""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import abort, current_app, flash, redirect, request, session, url_for
from flask_login import current_user
from wtforms import Form
from wtforms.fields.choices import SelectChoice

from ..crypto import decrypt, encrypt
from ..extensions import db
from ..models import Workspace

T = TypeVar("T")


def workspace() -> Workspace:
    return current_user.workspace


def workspace_id() -> int:
    return current_user.workspace_id


def owned(model: type[T], ident: int) -> T:
    """The workspace's object, or 404: another workspace's objects do not exist here."""
    row = db.session.get(model, ident)
    if row is None or row.workspace_id != workspace_id() or \
            getattr(row, "deleted_at", None) is not None:
        abort(404)
    return row


def safe_next(target: str | None, default: str = "/") -> str:
    """A local path to return to (never another site's address)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


def back(default_endpoint: str = "ui.dashboard.index", **values: Any):
    """Redirect to the page the form was on (same site only), else ``default_endpoint``."""
    referrer = request.referrer or ""
    parts = urlsplit(referrer)
    if parts.netloc == request.host:
        return redirect(safe_next(parts.path + (f"?{parts.query}" if parts.query else "")))
    return redirect(url_for(default_endpoint, **values))


def field_error(form: Form, path: str | None, message: str, fallback: str | None = None) -> None:
    """Put an error from the domain (``"config.worksheet: …"``) beside its field."""
    name = (path or "").split(".")[-1] if path else None
    target = getattr(form, name, None) if name else None
    if target is None and fallback:
        target = getattr(form, fallback, None)
    if target is None:
        flash(message, "error")
        return
    text = message
    for prefix in (f"{path}: ", f"{name}: "):  # the field says where already
        if path and text.startswith(prefix):
            text = text[len(prefix):]
    text = text[:1].upper() + text[1:]
    target.errors = [*(target.errors or []), text]


def public_url() -> str:
    return current_app.config["PUBLIC_URL"].rstrip("/")


def options(pairs) -> list[SelectChoice]:
    """``(value, label)`` pairs as select choices."""
    return [SelectChoice(str(value), str(label)) for value, label in pairs]


def show_once(name: str, secret: str) -> None:
    """Keep a new secret for the next page only (POST, redirect, GET: a reload never creates
    another), encrypted: the session is a cookie."""
    session[f"once.{name}"] = encrypt(secret)


def take_once(name: str) -> str | None:
    sealed = session.pop(f"once.{name}", None)
    return decrypt(sealed) if sealed else None
