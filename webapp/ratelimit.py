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
        count, ttl = self.lua_incr_ttl([self.prefixed_key(key)], [expiry, amount])
        self._answers()[key] = (int(count), time.time() + max(int(ttl), 0), time.monotonic())
        return int(count)

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
