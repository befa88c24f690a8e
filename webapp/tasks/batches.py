"""Batch jobs: a chunk of items, then the merge."""

from __future__ import annotations

from flask import current_app
from rq import Retry

from . import worker_app


def chunk(batch_id: int, start: int) -> int:
    from ..batches import render_chunk

    with worker_app().app_context():
        return render_chunk(batch_id, start)


def finish(batch_id: int) -> str:
    from ..batches import finish as finish_batch

    with worker_app().app_context():
        return finish_batch(batch_id)


def queue_chunk(batch_id: int, start: int) -> None:
    from ..batches import CHUNK
    from ..queues import BATCHES, queue

    queue(BATCHES).enqueue(chunk, batch_id, start, job_id=f"batch-{batch_id}-{start}",
                           retry=Retry(max=3, interval=[5, 30, 120]),
                           job_timeout=current_app.config["RENDER_TIMEOUT"] * CHUNK)


def queue_finish(batch_id: int) -> None:
    from ..queues import BATCHES, queue

    queue(BATCHES).enqueue(finish, batch_id, job_id=f"batch-{batch_id}-finish",
                           retry=Retry(max=3, interval=[5, 30, 120]), job_timeout=600)
