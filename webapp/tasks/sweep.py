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
from ..models import Batch, BatchItem, Render, SyncRun
from ..models.base import utcnow
from ..queues import redis_connection

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
GONE = (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED, JobStatus.FINISHED)


def stale_after() -> float:
    """How long a started job may run before its worker is taken for dead."""
    config = current_app.config
    return float(config.get("JOB_STALE_SECONDS") or config["RENDER_TIMEOUT"] + 60)


def sweep(grace_seconds: float = 10.0) -> int:
    """One round of the scheduler: unfinished renders and batches that no live job will
    finish are queued again, and synchronous renders whose process died are failed with
    their quota given back. Returns how many jobs were queued."""
    from ..experiments import flush_counts
    from ..syncs import poll

    steps = {"interrupted renders": lambda: fail_interrupted() * 0,
             "renders": lambda: sweep_renders(grace_seconds),
             "batches": lambda: sweep_batches(grace_seconds),
             "syncs": lambda: sweep_syncs(grace_seconds), "sheet polls": poll,
             "live banners": lambda: sweep_live(grace_seconds),
             "experiment counts": lambda: flush_counts() * 0}
    queued = 0
    for name, step in steps.items():
        try:
            queued += step()
        except Exception:  # one failing step (a Redis blip …) must not stop the others
            db.session.rollback()
            log.exception("the scheduler's round of %s failed; the next round tries again",
                          name)
    return queued


def sweep_live(grace_seconds: float = 10.0) -> int:
    """Live banners whose refresh chain broke (their job lost with Redis, or its worker killed)
    are queued again."""
    from ..live import overdue
    from .live import job_id, queue_refresh

    queued = 0
    for banner_id, due in overdue(grace_seconds):
        if orphaned_job(job_id(banner_id, due)):
            with contextlib.suppress(NoSuchJobError):
                Job.fetch(job_id(banner_id, due), connection=redis_connection()).delete()
            queued += queue_refresh(banner_id, due)
    return queued


def fail_interrupted() -> int:
    """A synchronous render (no parameters kept) still 'rendering' long after any render could
    take was cut off by its process dying: it fails, and its reservation is given back."""
    from ..rendering import release

    cutoff = utcnow() - dt.timedelta(seconds=stale_after())
    rows = db.session.scalars(select(Render).where(
        Render.status == "rendering", Render.params.is_(None),
        Render.created_at < cutoff)).all()
    for row in rows:
        row.status, row.completed_at = "failed", utcnow()
        row.error = {"code": "render_interrupted", "path": None,
                     "message": "the process rendering it stopped before it finished"}
        db.session.commit()
        release(row.workspace_id)
    return len(rows)


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
    return orphaned_job(f"render-{row.id}")


def orphaned_job(job_id: str) -> bool:
    """True when no live job will run: it is gone, ended, or started by a dead worker."""
    try:
        job = Job.fetch(job_id, connection=redis_connection())
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


def sweep_batches(grace_seconds: float = 10.0) -> int:
    cutoff = utcnow() - dt.timedelta(seconds=grace_seconds)
    batches = db.session.scalars(select(Batch).where(
        Batch.status.in_(("pending", "running")), Batch.created_at < cutoff)).all()
    return sum(_sweep_batch(batch) for batch in batches)


def _sweep_batch(batch: Batch) -> int:
    from ..batches import CHUNK
    from .batches import queue_chunk, queue_finish

    positions = db.session.scalars(select(BatchItem.position).where(
        BatchItem.batch_id == batch.id, BatchItem.status == "pending")).all()
    starts = sorted({position // CHUNK * CHUNK for position in positions})
    if not starts and batch.done + batch.failed == batch.total:
        finish_job = f"batch-{batch.id}-finish"
        return _requeue_job(finish_job, lambda: queue_finish(batch.id)) \
            if orphaned_job(finish_job) else 0
    queued = 0
    for start in starts:
        job_id = f"batch-{batch.id}-{start}"
        if not orphaned_job(job_id):
            continue
        if _count_attempt(batch, start) > MAX_ATTEMPTS:
            _abandon_chunk(batch, start)
            continue
        queued += _requeue_job(job_id, lambda start=start: queue_chunk(batch.id, start))
    return queued


def _requeue_job(job_id: str, enqueue) -> int:
    """Queue an orphaned job again (its leftover, if any, deleted first)."""
    with contextlib.suppress(NoSuchJobError):
        Job.fetch(job_id, connection=redis_connection()).delete()
    enqueue()
    log.warning("job %s queued again", job_id)
    return 1


def _count_attempt(batch: Batch, start: int) -> int:
    """Counts one more attempt at an orphaned chunk (kept on the batch); returns the count."""
    attempts = dict((batch.options or {}).get("attempts", {}))
    attempts[str(start)] = attempts.get(str(start), 1) + 1
    batch.options = {**(batch.options or {}), "attempts": attempts}
    db.session.commit()
    return attempts[str(start)]


def _abandon_chunk(batch: Batch, start: int) -> None:
    """A chunk that keeps killing its workers: its pending items fail with the reason."""
    from ..batches import CHUNK, finish_item

    items = db.session.scalars(select(BatchItem).where(
        BatchItem.batch_id == batch.id, BatchItem.status == "pending",
        BatchItem.position >= start, BatchItem.position < start + CHUNK)).all()
    for item in items:
        finish_item(batch, item, error={
            "code": "render_abandoned", "path": None,
            "message": f"the item could not be rendered after {MAX_ATTEMPTS} attempts "
                       f"(workers stopped or lost the job)"})


def sweep_syncs(grace_seconds: float = 10.0) -> int:
    """Syncs whose reading job was lost are queued again; after an hour they fail. (Their
    rendering is a batch, swept above; its finish job does the last write round.)"""
    from .syncs import queue_start

    cutoff = utcnow() - dt.timedelta(seconds=grace_seconds)
    runs = db.session.scalars(select(SyncRun).where(
        SyncRun.status.in_(("queued", "reading")), SyncRun.started_at < cutoff)).all()
    queued = 0
    for run in runs:
        if not orphaned_job(f"sync-{run.id}"):
            continue
        if run.started_at < utcnow() - dt.timedelta(hours=1):
            _abandon_sync(run)
            continue
        run.status = "queued"
        db.session.commit()
        queued += _requeue_job(f"sync-{run.id}", lambda run_id=run.id: queue_start(run_id))
    return queued


def _abandon_sync(run: SyncRun) -> None:
    from ..models import Binding

    binding = db.session.get(Binding, run.binding_id)
    run.status, run.finished_at = "failed", utcnow()
    run.error = {"code": "sync_abandoned", "message": "workers stopped or lost the sync's job "
                 "for an hour; the next sync starts afresh"}
    binding.status, binding.error = "error", run.error
    db.session.commit()
