"""Usage: this month's renders against the quota, the months before, and where they went."""

from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import func, select

from .. import usage
from ..extensions import db
from ..models import Render, Usage
from ..models.base import utcnow
from .common import workspace, workspace_id
from .dashboard import template_names, usage_view

bp = Blueprint("usage", __name__)


@bp.get("/usage")
def index():
    ws = workspace_id()
    months = db.session.execute(select(Usage.month, Usage.renders).where(
        Usage.workspace_id == ws).order_by(Usage.month.desc()).limit(24)).all()
    return render_template("usage.html", usage=usage_view(usage.summary(workspace())),
                           months=months, by_template=_by_template(ws))


def _by_template(ws: int) -> list[dict]:
    """This month's render rows per template and outcome (failed ones are not counted)."""
    start = utcnow().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    rows = db.session.execute(
        select(Render.template_id, Render.status, func.count()).where(
            Render.workspace_id == ws, Render.created_at >= start)
        .group_by(Render.template_id, Render.status)).all()
    names = template_names(ws)
    table: dict[int | None, dict] = {}
    for template_id, status, count in rows:
        entry = table.setdefault(template_id, {"name": names.get(template_id, "deleted"),
                                               "completed": 0, "failed": 0, "other": 0})
        key = status if status in ("completed", "failed") else "other"
        entry[key] += count
    return sorted(table.values(), key=lambda e: -e["completed"])
