"""Rate-limit counters in Redis with one round trip per request.

Flask-Limiter counts a request (``incr``) and then, to write the ``X-RateLimit-*`` headers, asks
Redis for the same counter's value and time to live: three round trips, more than the rest of a
cached render costs. This storage increments and reads the time to live in one script and answers
the two follow-up reads of that key from the script's reply, if they come from the same thread
within a second (they come from the same request, a moment later). Headers may therefore not
count requests that other processes made during this one; the limit itself is exact, since the
increment is atomic in Redis."""

from __future__ import annotations

import threading
import time

from limits.storage import RedisStorage
from redis.exceptions import RedisError

SCHEME = "pixelmerge+redis"
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
        """The script's reply on a pooled connection, without the client's command machinery
        (which costs twice the round trip); None when that cannot be done (script not loaded,
        connection lost …): then the client does it, with its retries."""
        pool = self.get_connection().connection_pool
        connection = pool.get_connection()
        try:
            connection.send_packed_command(connection.pack_command(
                "EVALSHA", self.lua_incr_ttl.sha, 1, *args), check_health=False)
            return connection.read_response()
        except RedisError:
            connection.disconnect()
            return None
        finally:
            pool.release(connection)

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
