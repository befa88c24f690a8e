"""Sync jobs: reading a binding's sheet (then its rows render as a batch), and write rounds
that the scheduler queues for syncs whose writer died."""

from __future__ import annotations

from rq import Retry

from . import worker_app


def start(run_id: int) -> str:
    from ..syncs import start as start_sync

    with worker_app().app_context():
        return start_sync(run_id)


def flush(run_id: int) -> str:
    from ..syncs import maybe_flush

    with worker_app().app_context():
        maybe_flush(run_id)
        return "flushed"


def queue_start(run_id: int) -> None:
    from ..queues import SYNCS, queue

    queue(SYNCS).enqueue(start, run_id, job_id=f"sync-{run_id}",
                         retry=Retry(max=3, interval=[5, 30, 120]), job_timeout=600)


def queue_flush(run_id: int) -> None:
    from ..queues import SYNCS, queue

    queue(SYNCS).enqueue(flush, run_id, job_id=f"sync-{run_id}-flush", job_timeout=600)
