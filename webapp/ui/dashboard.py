"""The dashboard: recent renders, this month's usage against the quota, and what to do next."""

from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import func, select

from renderer.encode import EXTENSIONS

from .. import usage
from ..extensions import db
from ..models import ApiKey, Binding, Render, Source, Template
from .common import public_url, workspace, workspace_id

bp = Blueprint("dashboard", __name__)
PICTURES = ("png", "jpeg", "webp", "avif", "gif")


@bp.get("/")
def index():
    ws = workspace_id()
    renders = db.session.scalars(select(Render).where(Render.workspace_id == ws)
                                 .order_by(Render.id.desc()).limit(12)).all()
    names = template_names(ws)
    return render_template("dashboard.html", renders=[render_row(r, names) for r in renders],
                           usage=usage_view(usage.summary(workspace())), counts=counts(ws))


def template_names(ws: int) -> dict[int, str]:
    return dict(db.session.execute(select(Template.id, Template.name).where(
        Template.workspace_id == ws)).all())


def render_row(row: Render, names: dict[int, str]) -> dict:
    url = (f"{public_url()}/r/{row.key}.{EXTENSIONS[row.format]}"
           if row.status == "completed" else None)
    return {"id": row.id, "status": row.status, "format": row.format, "url": url,
            "picture": url if row.format in PICTURES else None,
            "template": names.get(row.template_id, f"#{row.template_id}"),
            "template_id": row.template_id, "size": (row.width, row.height),
            "error": (row.error or {}).get("message"), "created_at": row.created_at}


def usage_view(summary: dict) -> dict:
    quota = summary["quota"]
    percent = min(100, round(100 * summary["renders"] / quota)) if quota else None
    level = "ok" if percent is None or percent < 80 else "warn" if percent < 100 else "full"
    return {**summary, "percent": percent, "level": level}


def counts(ws: int) -> dict[str, int]:
    def count(model, *where) -> int:
        return db.session.scalar(select(func.count()).select_from(model).where(
            model.workspace_id == ws, *where)) or 0

    return {"templates": count(Template, Template.deleted_at.is_(None)),
            "sources": count(Source), "bindings": count(Binding),
            "api_keys": count(ApiKey, ApiKey.revoked_at.is_(None))}
