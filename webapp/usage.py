"""Usage metering: renders per workspace per month against a quota. Cache hits are free."""

from __future__ import annotations

import datetime as dt

from flask import current_app
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .errors import ApiError
from .extensions import db
from .models import Usage, Workspace
from .models.base import utcnow


def month_of(now: dt.datetime | None = None) -> str:
    return (now or utcnow()).strftime("%Y-%m")


def quota_of(workspace: Workspace) -> int | None:
    quota = workspace.monthly_quota
    if quota is None:
        quota = current_app.config["MONTHLY_QUOTA"]
    return quota or None  # 0 means unlimited


def renders_this_month(workspace_id: int) -> int:
    used = db.session.scalar(select(Usage.renders).where(
        Usage.workspace_id == workspace_id, Usage.month == month_of()))
    return used or 0


def summary(workspace: Workspace) -> dict:
    used = renders_this_month(workspace.id)
    quota = quota_of(workspace)
    return {"month": month_of(), "renders": used, "quota": quota,
            "remaining": None if quota is None else max(0, quota - used)}


def check_quota(workspace_id: int) -> None:
    """Refuse a new render when the month's quota is used up (one query)."""
    quota, used = db.session.execute(
        select(Workspace.monthly_quota, Usage.renders)
        .outerjoin(Usage, (Usage.workspace_id == Workspace.id) & (Usage.month == month_of()))
        .where(Workspace.id == workspace_id)).one()
    if quota is None:
        quota = current_app.config["MONTHLY_QUOTA"]
    if not quota or (used or 0) < quota:
        return
    raise ApiError(429, "quota_exceeded",
                   f"this workspace has used its {quota:,} renders for {month_of()}; cached "
                   f"renders are still served",
                   details={"quota": quota, "month": month_of()},
                   headers={"Retry-After": str(_seconds_to_next_month())})


def _seconds_to_next_month() -> int:
    now = utcnow()
    first = (now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
             + dt.timedelta(days=32)).replace(day=1)
    return max(1, int((first - now).total_seconds()))


def count_render(workspace_id: int) -> None:
    """Add one render to this month, atomically (two workers may count at once)."""
    dialect = db.session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(Usage).values(workspace_id=workspace_id, month=month_of(), renders=1)
    statement = statement.on_conflict_do_update(
        index_elements=[Usage.workspace_id, Usage.month],
        set_={"renders": Usage.renders + 1})
    db.session.execute(statement)
