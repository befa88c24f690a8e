"""RQ jobs. Each takes ids and plain values, reloads what it needs and runs in an app context of
the worker's own app (created once per worker process)."""

from __future__ import annotations

from flask import Flask

_app: Flask | None = None


def worker_app() -> Flask:
    global _app
    if _app is None:
        from webapp import create_app

        _app = create_app()
    return _app


def use_app(app: Flask) -> None:
    """The worker command's app: jobs run with the configuration the worker started with."""
    global _app
    _app = app
