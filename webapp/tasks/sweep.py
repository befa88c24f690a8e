"""Nothing is left pending forever: renders whose job was lost (Redis restarted or flushed) or
whose worker died mid-job (a SIGKILL, a crashed machine) are queued again; after a few attempts
they fail with the reason."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging

from flask import current_app
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import select

from ..extensions import db
from ..models import Render
from ..models.base import utcnow
from ..queues import redis_connection

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
GONE = (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED, JobStatus.FINISHED)


def stale_after() -> float:
    """How long a started job may run before its worker is taken for dead."""
    config = current_app.config
    return float(config.get("JOB_STALE_SECONDS") or config["RENDER_TIMEOUT"] + 60)


def sweep_renders(grace_seconds: float = 10.0) -> int:
    """Queue again the unfinished renders that no live job will finish; returns how many."""
    cutoff = utcnow() - dt.timedelta(seconds=grace_seconds)
    rows = db.session.scalars(select(Render).where(
        Render.status.in_(("pending", "rendering")), Render.params.is_not(None),
        Render.created_at < cutoff)).all()
    requeued = 0
    for row in rows:
        if _orphaned(row):
            requeued += _requeue(row)
    return requeued


def _orphaned(row: Render) -> bool:
    try:
        job = Job.fetch(f"render-{row.id}", connection=redis_connection())
    except NoSuchJobError:
        return True
    status = job.get_status()
    if status in GONE:
        return True
    if status == JobStatus.STARTED and job.last_heartbeat is not None:
        age = (dt.datetime.now(dt.UTC) - job.last_heartbeat.replace(tzinfo=dt.UTC))
        return age.total_seconds() > stale_after()
    return False


def _requeue(row: Render) -> int:
    from ..rendering import release
    from .renders import queue_render

    attempts = int((row.params or {}).get("attempts", 1)) + 1
    if attempts > MAX_ATTEMPTS:
        release(row.workspace_id)
        row.status, row.completed_at = "failed", utcnow()
        row.error = {"code": "render_abandoned", "path": None,
                     "message": f"the render could not be completed after {MAX_ATTEMPTS} "
                                f"attempts (workers stopped or lost the job)"}
        db.session.commit()
        return 0
    row.params = {**(row.params or {}), "attempts": attempts}
    row.status = "pending"
    db.session.commit()
    with contextlib.suppress(NoSuchJobError):
        Job.fetch(f"render-{row.id}", connection=redis_connection()).delete()
    queue_render(row.id)
    log.warning("render %s queued again (attempt %s)", row.id, attempts)
    return 1
