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
count requests that other processes made during this one. The count is exact, since the
increment is atomic in Redis; a request whose key is well below its limit goes on before its
count's reply is read, which lets the limit be passed by at most one request per server thread
in a window (see ``KeyLimit.settle``)."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g
from flask_limiter import Limiter
from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import FixedWindowRateLimiter, RateLimiter
from redis.exceptions import NoScriptError, RedisError

from .errors import ApiError

log = logging.getLogger(__name__)

SCHEME = "pixelmerge+redis"
RETRY_STORAGE_SECONDS = 30.0  # after Redis failed, count in memory this long before trying it


class KeyLimit:
    """One budget per API key (or client address without one) across every operation of
    ``bp``, from the configuration setting ``setting``: ``X-RateLimit-Limit``, ``-Remaining``
    and ``-Reset`` on every answer, ``429 rate_limited`` with ``Retry-After`` over it. Counted
    by Flask-Limiter's strategy in its storage (Redis when configured), exactly across
    processes (a key well below its limit may pass it by one request per server thread: see
    ``settle``); while Redis cannot be reached, in this process's memory, as Flask-Limiter does
    (``RATELIMIT_IN_MEMORY_FALLBACK_ENABLED``)."""

    def __init__(self, limiter: Limiter, key_func, setting: str, scope: str) -> None:
        self.limiter = limiter
        self.key_func = key_func
        self.setting = setting
        self.scope = scope

    def init_blueprint(self, bp: Blueprint) -> None:
        bp.before_request(self.check)
        bp.after_request(self.write_headers)
        bp.teardown_request(lambda _: self.drain())

    def check(self) -> None:
        """Count the request: sent to Redis now, the reply read by ``settle`` (first thing in
        the operation, see ``openapi.operation``), so that the round trip overlaps the rest of
        Flask's request setup."""
        if not self.limiter.enabled:
            return
        item, key = _item(current_app.config[self.setting]), self.key_func()
        strategy = self._fallback().strategy() or self.limiter.limiter
        started = None
        if isinstance(strategy, FixedWindowRateLimiter) and isinstance(
                strategy.storage, OneTripRedisStorage):
            try:
                started = strategy.storage.start_incr(item.key_for(self.scope, key),
                                                      item.get_expiry())
            except (StorageError, RedisError) as exc:
                strategy = self._storage_failed(exc)
        g.key_limit_pending = (self, item, key, strategy, started)

    def settle(self, item: RateLimitItem, key: str, strategy: RateLimiter,
               started: Started | None) -> None:
        """Finish counting: headers for the answer, ``429`` over the limit. A key that this
        thread saw below half its limit in the last second does not wait for the reply: it is
        read when the answer is made (``drain``). So at most one request per thread passes
        uncounted at any time, and a thread's next request after a reply above half the limit
        waits again: the limit is exceeded by at most one request per server thread, and only
        when more than half of it arrives within a second."""
        if started is not None and started.connection is not None and _well_below(
                item, item.key_for(self.scope, key), strategy.storage):
            g.key_limit_deferred = (item, key, strategy, started)
            return
        allowed, stats = self._finish(item, key, strategy, started)
        g.key_limit = (item, stats)
        if not allowed:
            raise ApiError(429, "rate_limited", f"too many requests: the limit is {item}; "
                           "wait for Retry-After seconds",
                           headers={"Retry-After": str(max(1, int(stats[0] - time.time())))})

    def _finish(self, item: RateLimitItem, key: str, strategy: RateLimiter,
                started: Started | None) -> tuple[bool, tuple[float, int]]:
        if started is not None:
            try:
                count = strategy.storage.finish_incr(item.key_for(self.scope, key), started)
                return count <= item.amount, tuple(strategy.get_window_stats(item, self.scope,
                                                                             key))
            except (StorageError, RedisError) as exc:
                strategy = self._storage_failed(exc)
        return self._hit(item, key, strategy)

    def drain(self) -> None:
        """Read a reply no view waited for (the request failed before its view ran, or its key
        was well below the limit): the connection must not keep it for the next request."""
        with contextlib.suppress(ApiError):
            settle()
        deferred = g.pop("key_limit_deferred", None)
        if deferred is not None:  # (served already: counted, never refused now)
            item, key, strategy, started = deferred
            try:
                g.key_limit = (item, self._finish(item, key, strategy, started)[1])
            except (StorageError, RedisError) as exc:
                log.warning("rate-limit count of a served request lost: %s", exc)

    def write_headers(self, response: Response) -> Response:
        self.drain()
        found = g.pop("key_limit", None)
        if found is not None:
            item, (reset, remaining) = found
            response.headers["X-RateLimit-Limit"] = str(item.amount)
            response.headers["X-RateLimit-Remaining"] = str(remaining)
            response.headers["X-RateLimit-Reset"] = str(int(reset))
        return response

    def _fallback(self) -> _Fallback:
        fallback = current_app.extensions.get("ratelimit.fallback")
        if fallback is None:  # (a MemoryStorage starts a thread: made once per app)
            fallback = current_app.extensions["ratelimit.fallback"] = _Fallback()
        return fallback

    def _hit(self, item: RateLimitItem, key: str,
             strategy: RateLimiter) -> tuple[bool, tuple[float, int]]:
        try:
            allowed = strategy.hit(item, self.scope, key)
            return allowed, tuple(strategy.get_window_stats(item, self.scope, key))
        except (StorageError, RedisError) as exc:
            if strategy is self._fallback().memory:
                raise
            return self._hit(item, key, self._storage_failed(exc))

    def _storage_failed(self, exc: Exception) -> RateLimiter:
        """Count in memory from now on (for a while), as Flask-Limiter would; or raise."""
        if not current_app.config.get("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED"):
            raise exc
        log.warning("rate-limit storage unreachable (%s): counting in memory", exc)
        fallback = self._fallback()
        fallback.failed_at = time.monotonic()
        return fallback.memory


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


def without_middleware(app: Flask, limiter: Limiter) -> None:
    """Take out Flask-Limiter's check before every request: it looks for default,
    application and blueprint limits, of which there are none (the API's budget is
    ``KeyLimit``'s; the public endpoints' limits are checked by their decorators), and looking
    costs 0.1 ms of every request, /healthz included."""
    checks = app.before_request_funcs.get(None, [])
    app.before_request_funcs[None] = [
        check for check in checks if getattr(check, "__func__", None) is not
        type(limiter)._check_request_limit]


def settle() -> None:
    """Finish counting this request against its rate limit (see ``KeyLimit.check``): called
    first thing by every API operation, so that a request over the limit changes nothing (not
    even its key's last-used time) and is answered 429 before anything else is checked (a key
    well below its limit goes on at once: see ``KeyLimit.settle``)."""
    pending = g.pop("key_limit_pending", None)
    if pending is not None:
        pending[0].settle(*pending[1:])


def _well_below(item: RateLimitItem, key: str, storage: Any) -> bool:
    """Whether this thread's last reply for ``key``, within the last second and the current
    window, left it below half the limit."""
    answer = storage.recent_answer(key) if isinstance(storage, OneTripRedisStorage) else None
    return answer is not None and 2 * (answer[0] + 1) <= item.amount and \
        answer[1] > time.time()


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


@dataclass(frozen=True)
class Started:
    """An increment sent to Redis, its reply still to be read (on ``connection``)."""

    args: tuple
    connection: Any | None  # None: not sent; the client makes the call when it is finished
    sent: float = 0.0  # time.time() and time.monotonic() when it was sent: the reply's
    sent_monotonic: float = 0.0  # time to live counts from then


class OneTripRedisStorage(RedisStorage):
    STORAGE_SCHEME = [SCHEME, f"{SCHEME}s"]

    def __init__(self, uri: str, **options) -> None:
        super().__init__(uri.removeprefix("pixelmerge+"), **options)
        self._recent = threading.local()

    def initialize_storage(self, uri: str) -> None:
        super().initialize_storage(uri)
        self.lua_incr_ttl = self.get_connection().register_script(INCR_TTL)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        try:
            started = self.start_incr(key, expiry, amount)
        except RedisError:  # the client tries again, with its retries
            started = Started((self.prefixed_key(key), expiry, amount), None)
        return self.finish_incr(key, started)

    def start_incr(self, key: str, expiry: int, amount: int = 1) -> Started:
        """Send the increment of ``key`` on this thread's own connection, without waiting for
        the reply (``finish_incr`` reads it): the caller does other work meanwhile. The
        connection skips the client's command machinery and the pool's lock and health poll,
        which together cost more than the round trip. ``RedisError`` when it cannot be sent."""
        args = (self.prefixed_key(key), expiry, amount)
        owner, connection = getattr(self._recent, "connection", (None, None))
        if owner != os.getpid():  # (a forked child never shares its parent's socket)
            connection = self.get_connection().connection_pool.make_connection()
            self._recent.connection = (os.getpid(), connection)
        if getattr(self._recent, "in_flight", False):
            return Started(args, None)  # this thread awaits another reply on it: no direct trip
        try:
            connection.send_packed_command(connection.pack_command(
                "EVALSHA", self.lua_incr_ttl.sha, 1, *args), check_health=False)
        except BaseException:
            connection.disconnect()
            raise
        self._recent.in_flight = True
        return Started(args, connection, time.time(), time.monotonic())

    def finish_incr(self, key: str, started: Started) -> int:
        """The count after ``start_incr``. A Redis that forgot the script (restarted, flushed)
        gets it again from the client; any other failure is raised, never retried (the count
        may have been made: a retry could count the request twice)."""
        reply, sent, sent_monotonic = None, started.sent, started.sent_monotonic
        answers = self._answers()
        answers.pop(key, None)  # (a failure below leaves no answer to go by)
        if started.connection is not None:
            try:
                reply = started.connection.read_response()
            except NoScriptError:
                pass
            except BaseException:
                started.connection.disconnect()  # whatever reply comes must not be read later
                raise
            finally:
                self._recent.in_flight = False
        if reply is None:
            sent, sent_monotonic = time.time(), time.monotonic()
            reply = self.lua_incr_ttl([started.args[0]], started.args[1:])
        count, ttl = reply
        if len(answers) > 1000:  # (keys come from any bearer token, known or not)
            answers.clear()
        answers[key] = (int(count), sent + max(int(ttl), 0), sent_monotonic)
        return int(count)

    def _answers(self) -> dict:
        answers = getattr(self._recent, "answers", None)
        if answers is None:
            answers = self._recent.answers = {}
        return answers

    def recent_answer(self, key: str) -> tuple[int, float, float] | None:
        """This thread's last reply for ``key`` (count, reset time, when), if under a second
        old."""
        answer = self._answers().get(key)
        if answer is not None and time.monotonic() - answer[2] < FRESH_SECONDS:
            return answer
        return None

    def get(self, key: str) -> int:
        answer = self.recent_answer(key)
        return answer[0] if answer is not None else super().get(key)

    def get_expiry(self, key: str) -> float:
        answer = self.recent_answer(key)
        return answer[1] if answer is not None else super().get_expiry(key)


def storage_uri(redis_url: str | None) -> str:
    if not redis_url:
        return "memory://"
    return f"pixelmerge+{redis_url}" if redis_url.startswith(("redis://", "rediss://")) \
        else redis_url
