"""Usage metering: renders per workspace per month against a quota. Cache hits are free."""

from __future__ import annotations

import datetime as dt
import functools
import time

from flask import current_app
from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .errors import ApiError
from .extensions import db
from .models import Usage, Workspace
from .models.base import utcnow
from .rawsql import RawStatement, Transaction


def month_of(now: dt.datetime | None = None) -> str:
    return (now or utcnow()).strftime("%Y-%m")


def renders_this_month(workspace_id: int) -> int:
    used = db.session.scalar(select(Usage.renders).where(
        Usage.workspace_id == workspace_id, Usage.month == month_of()))
    return used or 0


def summary(workspace: Workspace) -> dict:
    used = renders_this_month(workspace.id)
    quota = _quota(workspace.id) or None  # 0 means unlimited
    return {"month": month_of(), "renders": used, "quota": quota,
            "remaining": None if quota is None else max(0, quota - used)}


def reserve(workspace_id: int, *, record: object | None = None) -> None:
    """Count one new render before it is made, refusing it when the month's quota is used up.
    One atomic statement, so concurrent requests can never overshoot the quota; ``release``
    gives the render back if it fails. ``record`` (the render's row) is stored in the same
    transaction, so a reservation never exists without a trace of what it was for."""
    if not reserve_many(workspace_id, [record] if record is not None else [], count=1):
        raise quota_exceeded(workspace_id)


def reserve_many(workspace_id: int, records: list, *, count: int | None = None) -> bool:
    """Count ``count`` (default: one per record) new renders at once, all or none, with their
    ``records`` in the same transaction; False (nothing counted) when they do not all fit in
    the month's quota. A batch's chunk reserves its items with one statement."""
    if not counted(workspace_id, len(records) if count is None else count):
        return False
    db.session.add_all(records)
    db.session.commit()
    return True


def counted(workspace_id: int, count: int, transaction: Transaction | None = None) -> bool:
    """Count ``count`` new renders in ``transaction`` (default: the session's), all or none,
    with one atomic statement; the caller records what they are for and commits. False when
    they do not all fit in the month's quota: nothing counted, and the session's transaction
    rolled back (a ``transaction`` is left to its caller, whose block then raises)."""
    quota = _quota(workspace_id)
    if quota and count > quota:  # the first of a month's statements inserts without a check
        return False
    dialect = (transaction.dialect if transaction is not None
               else db.session.get_bind().dialect).name
    done = _reserve_statement(dialect, bool(quota)).first(
        {"ws": workspace_id, "month": month_of(), "quota": quota - count + 1 if quota else 0,
         "n": count}, transaction)
    if done is None:  # held back by the quota
        if transaction is None:
            db.session.rollback()
        _refusals()[workspace_id] = time.monotonic()
        return False
    return True


@functools.cache
def _reserve_statement(dialect: str, limited: bool):
    """INSERT … ON CONFLICT … DO UPDATE [WHERE renders < quota - n + 1] RETURNING renders,
    built once per dialect and run on the raw connection (it runs for every new render)."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(Usage).values(workspace_id=bindparam("ws"), month=bindparam("month"),
                                     renders=bindparam("n"))
    return RawStatement(statement.on_conflict_do_update(
        index_elements=[Usage.workspace_id, Usage.month],
        set_={"renders": Usage.renders + bindparam("n")},
        where=(Usage.renders < bindparam("quota")) if limited else None,
    ).returning(Usage.renders))


QUOTA_SECONDS = 5.0  # a changed workspace quota reaches every process within this time


def _refusals() -> dict[int, float]:
    return current_app.extensions.setdefault("usage.refusals", {})


def recently_refused(workspace_id: int) -> bool:
    """Whether this process refused the workspace a render within QUOTA_SECONDS: then a render
    reserves before it starts rather than while it runs (see rendering)."""
    when = _refusals().get(workspace_id)
    return when is not None and time.monotonic() - when < QUOTA_SECONDS


def _quota(workspace_id: int) -> int:
    """The workspace's monthly quota (0: unlimited), read at most every few seconds."""
    cache = current_app.extensions.setdefault("usage.quotas", {})
    hit = cache.get(workspace_id)
    now = time.monotonic()
    if hit is not None and now - hit[0] < QUOTA_SECONDS:
        return hit[1]
    quota = db.session.scalar(select(Workspace.monthly_quota).where(
        Workspace.id == workspace_id))
    if quota is None:
        quota = current_app.config["MONTHLY_QUOTA"]
    cache[workspace_id] = (now, quota)
    return quota


def release(workspace_id: int) -> None:
    """Give back a reservation whose render failed: failures do not count."""
    db.session.execute(update(Usage).where(
        Usage.workspace_id == workspace_id, Usage.month == month_of(), Usage.renders > 0)
        .values(renders=Usage.renders - 1))
    db.session.commit()


def quota_exceeded(workspace_id: int) -> ApiError:
    quota = _quota(workspace_id)
    return ApiError(429, "quota_exceeded",
                    f"this workspace has used its {quota:,} renders for {month_of()}; cached "
                    f"renders are still served",
                    details={"quota": quota, "month": month_of()},
                    headers={"Retry-After": str(_seconds_to_next_month())})


def _seconds_to_next_month() -> int:
    now = utcnow()
    first = (now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
             + dt.timedelta(days=32)).replace(day=1)
    return max(1, int((first - now).total_seconds()))
