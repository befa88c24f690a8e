"""RQ queues on Redis. Names are constants; the connection is always passed explicitly."""

from __future__ import annotations

from flask import Flask, current_app
from redis import Redis
from rq import Queue

RENDERS = "renders"
BATCHES = "batches"
WEBHOOKS = "webhooks"
SYNCS = "syncs"  # reading a binding's sheet and writing its outputs back
LIVE = "live"  # refreshing live banners from their sources
# a worker takes jobs from the first queue that has one: the small, time-bound jobs (a render
# someone waits for, a live banner's refresh) go before the long batch chunks
ALL = (RENDERS, LIVE, SYNCS, BATCHES, WEBHOOKS)


class QueueUnavailable(Exception):
    """No Redis is configured, or it cannot be reached."""


def redis_connection(app: Flask | None = None) -> Redis:
    app = app or current_app
    connection = app.extensions.get("queues.redis")
    if connection is None:
        url = app.config.get("REDIS_URL")
        if not url:
            raise QueueUnavailable("background work needs Redis: set REDIS_URL")
        connection = app.extensions["queues.redis"] = Redis.from_url(
            url, socket_connect_timeout=3, socket_timeout=10)
    return connection


def require(name: str, what: str) -> Queue:
    """The queue an API call needs, or a 503 saying that ``what`` cannot be done here."""
    from .errors import ApiError

    try:
        return queue(name)
    except QueueUnavailable as exc:
        raise ApiError(503, "queue_unavailable", f"{what} are not available: {exc}") from None


def queue(name: str, app: Flask | None = None) -> Queue:
    if name not in ALL:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=redis_connection(app))


def wait_for_redis(app: Flask, seconds: float = 30.0) -> Redis:
    """The connection, once Redis answers (processes started together may race it)."""
    import time

    from redis.exceptions import RedisError

    connection = redis_connection(app)
    deadline = time.monotonic() + seconds
    while True:
        try:
            connection.ping()
            return connection
        except RedisError:
            if time.monotonic() > deadline:
                raise QueueUnavailable(f"Redis did not answer within {seconds:.0f} s") from None
            time.sleep(0.2)
