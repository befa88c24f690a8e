"""Lookups shared by the API modules; they own the tenant checks."""

from __future__ import annotations

from typing import TypeVar

from flask import g

from ..auth import authenticate
from ..errors import not_found
from ..extensions import db
from ..models import Workspace

T = TypeVar("T")


def current_workspace() -> Workspace:
    workspace = getattr(g, "workspace", None)
    if workspace is None:
        workspace = g.workspace = db.session.get(Workspace, authenticate().workspace_id)
    return workspace


def owned(model: type[T], ident: int, what: str) -> T:
    """The ``model`` row ``ident`` of the caller's workspace; any other answers 404 alike."""
    row = db.session.get(model, ident)
    if row is None or row.workspace_id != authenticate().workspace_id:
        raise not_found(what, ident)
    return row
