"""Live banner refreshes: each run queues the next on RQ's scheduler (workers run with it), so
a banner refreshes every ``refresh_seconds`` without waiting for the scheduler's round."""

from __future__ import annotations

import datetime as dt

from rq.job import Job

from . import worker_app


def refresh(banner_id: int) -> str:
    from ..live import refresh as refresh_banner

    with worker_app().app_context():
        return refresh_banner(banner_id)


def job_id(banner_id: int, due: dt.datetime) -> str:
    """One job per banner and due time: the chain and the scheduler's sweep cannot both queue
    the same refresh."""
    return f"live-{banner_id}-{int(due.timestamp())}"


def queue_refresh(banner_id: int, due: dt.datetime | None = None) -> bool:
    """Queue a refresh for ``due`` (now when omitted or past); False if it is queued already."""
    from ..models.base import utcnow
    from ..queues import LIVE, queue

    live = queue(LIVE)
    now = utcnow()
    due = due or now
    ident = job_id(banner_id, due)
    if Job.exists(ident, connection=live.connection):
        return False
    options = {"job_id": ident, "job_timeout": 120, "result_ttl": 60, "failure_ttl": 3600}
    if due > now:
        live.enqueue_in(due - now, refresh, banner_id, **options)
    else:
        live.enqueue(refresh, banner_id, **options)
    return True
