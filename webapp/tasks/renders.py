"""Render jobs: an ``async`` render request, completed in the background."""

from __future__ import annotations

from . import worker_app


def render(render_id: int) -> str:
    """Complete pending render ``render_id``; a permanent failure is recorded on the render,
    a transient one (database, storage) raises so that RQ retries the job."""
    from ..rendering import complete_pending

    with worker_app().app_context():
        return complete_pending(render_id)


def queue_render(render_id: int) -> None:
    """Put render ``render_id`` on the renders queue (one job id per render, so a render is
    never queued twice at once), retried with growing delays on transient errors."""
    from flask import current_app
    from rq import Retry

    from ..queues import RENDERS, queue

    queue(RENDERS).enqueue(render, render_id, job_id=f"render-{render_id}",
                           retry=Retry(max=3, interval=[5, 30, 120]),
                           job_timeout=current_app.config["RENDER_TIMEOUT"] + 30)
