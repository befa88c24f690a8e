"""Lookups shared by the API modules; they own the tenant checks."""

from __future__ import annotations

from flask import g

from ..auth import authenticate
from ..extensions import db
from ..models import Workspace


def current_workspace() -> Workspace:
    workspace = getattr(g, "workspace", None)
    if workspace is None:
        workspace = g.workspace = db.session.get(Workspace, authenticate().workspace_id)
    return workspace
