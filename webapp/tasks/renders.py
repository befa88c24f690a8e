"""Render jobs: an ``async`` render request, completed in the background."""

from __future__ import annotations

from . import worker_app


def render(render_id: int) -> str:
    """Complete pending render ``render_id``; a permanent failure is recorded on the render,
    a transient one (database, storage) raises so that RQ retries the job."""
    from ..rendering import complete_pending

    with worker_app().app_context():
        return complete_pending(render_id)
