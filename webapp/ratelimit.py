"""Rate limits: the API's budget per key, and counters in Redis with one round trip each.

Flask-Limiter is the extension (configuration, storage, the per-address limits of the public
endpoints). The API's one shared budget per key is checked by ``KeyLimit``, a hook of its own
on the API blueprint that counts with the same ``limits`` strategy and storage: Flask-Limiter's
generic hooks (resolving the blueprint's limits, filters, exemptions and meta limits on every
request, then the headers) cost 0.3 ms of a 0.6 ms cache hit and 0.8 ms of a fresh render's
latency on our 2-core VM (docs/benchmarks.md), as much as everything else a cache hit does.

Flask-Limiter counts a request (``incr``) and then, to write the ``X-RateLimit-*`` headers, asks
Redis for the same counter's value and time to live: three round trips, more than the rest of a
cached render costs. This storage increments and reads the time to live in one script and answers
the two follow-up reads of that key from the script's reply, if they come from the same thread
within a second (they come from the same request, a moment later). Headers may therefore not
count requests that other processes made during this one; the limit itself is exact, since the
increment is atomic in Redis."""

from __future__ import annotations

import functools
import logging
import os
import threading
import time

from flask import Blueprint, Response, current_app, g, request
from flask_limiter import Limiter
from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import FixedWindowRateLimiter, RateLimiter
from redis.exceptions import RedisError

from .errors import ApiError

log = logging.getLogger(__name__)

SCHEME = "pixelmerge+redis"
RETRY_STORAGE_SECONDS = 30.0  # after Redis failed, count in memory this long before trying it


class KeyLimit:
    """One budget per API key (or client address without one) across every operation of
    ``bp``, from the configuration setting ``setting``: ``X-RateLimit-Limit``, ``-Remaining``
    and ``-Reset`` on every answer, ``429 rate_limited`` with ``Retry-After`` over it. Counted
    by Flask-Limiter's strategy in its storage (Redis when configured), exactly across
    processes; while Redis cannot be reached, in this process's memory, as Flask-Limiter does
    (``RATELIMIT_IN_MEMORY_FALLBACK_ENABLED``)."""

    def __init__(self, limiter: Limiter, key_func, setting: str, scope: str) -> None:
        self.limiter = limiter
        self.key_func = key_func
        self.setting = setting
        self.scope = scope

    def init_blueprint(self, bp: Blueprint) -> None:
        bp.before_request(self.check)
        bp.after_request(self.write_headers)
        # the extension's own hook leaves these requests to this one
        self.limiter.request_filter(lambda: (request.blueprint or "").split(".")[0] == bp.name)

    def check(self) -> None:
        if not self.limiter.enabled:
            return
        item, key = _item(current_app.config[self.setting]), self.key_func()
        allowed, stats = self._hit(item, key)
        g.key_limit = (item, stats)
        if not allowed:
            raise ApiError(429, "rate_limited", f"too many requests: the limit is {item}; "
                           "wait for Retry-After seconds",
                           headers={"Retry-After": str(max(1, int(stats[0] - time.time())))})

    def write_headers(self, response: Response) -> Response:
        found = g.pop("key_limit", None)
        if found is not None:
            item, (reset, remaining) = found
            response.headers["X-RateLimit-Limit"] = str(item.amount)
            response.headers["X-RateLimit-Remaining"] = str(remaining)
            response.headers["X-RateLimit-Reset"] = str(int(reset))
        return response

    def _hit(self, item: RateLimitItem, key: str) -> tuple[bool, tuple[float, int]]:
        fallback = current_app.extensions.get("ratelimit.fallback")
        if fallback is None:  # (a MemoryStorage starts a thread: made once per app)
            fallback = current_app.extensions["ratelimit.fallback"] = _Fallback()
        strategy = fallback.strategy() or self.limiter.limiter
        try:
            allowed = strategy.hit(item, self.scope, key)
            return allowed, tuple(strategy.get_window_stats(item, self.scope, key))
        except (StorageError, RedisError) as exc:
            if strategy is fallback.memory or not current_app.config.get(
                    "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED"):
                raise
            log.warning("rate-limit storage unreachable (%s): counting in memory", exc)
            fallback.failed_at = time.monotonic()
            return self._hit(item, key)


class _Fallback:
    """An app's counting in memory while its storage is unreachable."""

    def __init__(self) -> None:
        self.memory = FixedWindowRateLimiter(MemoryStorage())
        self.failed_at: float | None = None

    def strategy(self) -> RateLimiter | None:
        failed = self.failed_at
        if failed is not None and time.monotonic() - failed < RETRY_STORAGE_SECONDS:
            return self.memory
        return None


@functools.lru_cache(maxsize=64)
def _item(setting: str) -> RateLimitItem:
    return parse(setting)

FRESH_SECONDS = 1.0
INCR_TTL = """
local current = redis.call("incrby", KEYS[1], tonumber(ARGV[2]))
if tonumber(current) == tonumber(ARGV[2]) then
    redis.call("expire", KEYS[1], ARGV[1])
end
return {current, redis.call("ttl", KEYS[1])}
"""


class OneTripRedisStorage(RedisStorage):
    STORAGE_SCHEME = [SCHEME, f"{SCHEME}s"]

    def __init__(self, uri: str, **options) -> None:
        super().__init__(uri.removeprefix("pixelmerge+"), **options)
        self._recent = threading.local()

    def initialize_storage(self, uri: str) -> None:
        super().initialize_storage(uri)
        self.lua_incr_ttl = self.get_connection().register_script(INCR_TTL)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        args = (self.prefixed_key(key), expiry, amount)
        reply = self._direct(args)
        count, ttl = reply if reply is not None else self.lua_incr_ttl([args[0]], args[1:])
        self._answers()[key] = (int(count), time.time() + max(int(ttl), 0), time.monotonic())
        return int(count)

    def _direct(self, args: tuple) -> list | None:
        """The script's reply on this thread's own connection, without the client's command
        machinery and the pool's lock and health poll (which together cost more than the round
        trip); None when that cannot be done (script not loaded, connection lost …): then the
        client does it, with its retries."""
        owner, connection = getattr(self._recent, "connection", (None, None))
        if owner != os.getpid():  # (a forked child never shares its parent's socket)
            connection = self.get_connection().connection_pool.make_connection()
            self._recent.connection = (os.getpid(), connection)
        try:
            connection.send_packed_command(connection.pack_command(
                "EVALSHA", self.lua_incr_ttl.sha, 1, *args), check_health=False)
            return connection.read_response()
        except RedisError:
            connection.disconnect()
            return None

    def _answers(self) -> dict:
        answers = getattr(self._recent, "answers", None)
        if answers is None:
            answers = self._recent.answers = {}
        return answers

    def _fresh(self, key: str) -> tuple[int, float, float] | None:
        answer = self._answers().get(key)
        if answer is not None and time.monotonic() - answer[2] < FRESH_SECONDS:
            return answer
        return None

    def get(self, key: str) -> int:
        answer = self._fresh(key)
        return answer[0] if answer is not None else super().get(key)

    def get_expiry(self, key: str) -> float:
        answer = self._fresh(key)
        return answer[1] if answer is not None else super().get_expiry(key)


def storage_uri(redis_url: str | None) -> str:
    if not redis_url:
        return "memory://"
    return f"pixelmerge+{redis_url}" if redis_url.startswith(("redis://", "rediss://")) \
        else redis_url
