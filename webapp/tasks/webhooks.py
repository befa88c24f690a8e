"""Webhook delivery jobs."""

from __future__ import annotations

from rq import get_current_job

from . import worker_app


def deliver(delivery_id: int) -> str:
    from ..webhooks import deliver as attempt

    job = get_current_job()
    last_try = job is None or not job.retries_left
    with worker_app().app_context():
        return attempt(delivery_id, last_try=last_try)
