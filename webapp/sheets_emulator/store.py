"""The emulator's whole state behind one lock: spreadsheets, service accounts and tokens, queued
faults, the per-minute quota and the request log. With a ``data_path`` the spreadsheets, service
accounts and grants are loaded at start and saved after each change (temp file + rename, so the
file is always whole); faults, quota counters and the log live in memory only."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .auth import AuthState
from .errors import AdminError
from .workbook import Spreadsheet

LOG_LIMIT = 50_000
FORMAT_VERSION = 1
FAULT_STATUSES = (400, 401, 403, 404, 429, 500, 503)


@dataclass
class Fault:
    """The next ``count`` /v4 requests matching ``methods`` and ``paths`` (substrings of the
    path) answer ``status``."""

    status: int
    count: int
    methods: tuple[str, ...] | None = None
    paths: tuple[str, ...] | None = None
    retry_after: int | None = None

    def matches(self, method: str, path: str) -> bool:
        return (not self.methods or method.upper() in self.methods) and \
            (not self.paths or any(part in path for part in self.paths))

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "count": self.count,
                "methods": list(self.methods) if self.methods else None,
                "paths": list(self.paths) if self.paths else None,
                "retry_after": self.retry_after}


class State:
    def __init__(self, *, data_path: str | os.PathLike | None = None,
                 quota_per_minute: int | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.lock = threading.RLock()
        self.data_path = Path(data_path) if data_path else None
        self.default_quota = quota_per_minute
        self.quota_per_minute = quota_per_minute
        self.clock = clock
        self.spreadsheets: dict[str, Spreadsheet] = {}
        self.auth = AuthState()
        self.faults: list[Fault] = []
        self.windows: dict[tuple[str, str], deque[float]] = {}
        self.log: deque[dict[str, Any]] = deque(maxlen=LOG_LIMIT)
        self._load()

    def _load(self) -> None:
        if self.data_path and self.data_path.exists():
            try:
                data = json.loads(self.data_path.read_text())
                self.spreadsheets = {s["id"]: Spreadsheet.from_json(s)
                                     for s in data.get("spreadsheets", [])}
                self.auth = AuthState.from_json(data.get("auth", {}))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"cannot read the emulator's data in {self.data_path}: "
                                 f"{exc}") from exc
        self.auth.ensure_keys()
        self.save()

    def save(self) -> None:
        if self.data_path is None:
            return
        data = {"version": FORMAT_VERSION,
                "spreadsheets": [s.to_json() for s in self.spreadsheets.values()],
                "auth": self.auth.to_json()}
        self.data_path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.data_path.with_name(f".{self.data_path.name}.{os.getpid()}.tmp")
        # private keys and tokens: readable by the owner only
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(data, file, separators=(",", ":"))
        os.replace(partial, self.data_path)

    @contextmanager
    def changing(self) -> Iterator[None]:
        """Hold the lock for a change and save it afterwards (not when it failed)."""
        with self.lock:
            yield
            self.save()

    def reset(self) -> None:
        """Everything back to the start except the service accounts and the ID-token key:
        key files already handed out keep working."""
        with self.changing():
            self.spreadsheets.clear()
            self.auth.clear_tokens()
            self.faults.clear()
            self.windows.clear()
            self.log.clear()
            self.quota_per_minute = self.default_quota

    def add_fault(self, data: dict[str, Any]) -> Fault:
        """Queue a fault from the admin API's ``{"status", "count", "methods", "paths",
        "retry_after"}``."""
        status, count = data.get("status"), data.get("count", 1)
        if status not in FAULT_STATUSES:
            raise AdminError(f"status must be one of {', '.join(map(str, FAULT_STATUSES))}")
        if not isinstance(count, int) or count < 1:
            raise AdminError("count must be a positive integer")
        fault = Fault(status, count, _strings(data.get("methods"), upper=True),
                      _strings(data.get("paths")), data.get("retry_after"))
        with self.lock:
            self.faults.append(fault)
        return fault

    def set_quota(self, per_minute: Any) -> None:
        if per_minute is not None and (not isinstance(per_minute, int) or per_minute < 1):
            raise AdminError("per_minute must be a positive integer or null")
        with self.lock:
            self.quota_per_minute = per_minute
            self.windows.clear()

    def reset_quota(self) -> None:
        with self.lock:
            self.windows.clear()

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.count -= 1
                    if fault.count <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def admit(self, principal: str, kind: str) -> bool:
        """Count one request against ``principal``'s per-minute ``kind`` (read/write) quota;
        False when it is used up (the refused request does not count)."""
        with self.lock:
            if not self.quota_per_minute:
                return True
            now = self.clock()
            window = self.windows.setdefault((principal, kind), deque())
            while window and window[0] <= now - 60:
                window.popleft()
            if len(window) >= self.quota_per_minute:
                return False
            window.append(now)
            return True

    def quota_usage(self) -> dict[str, dict[str, int]]:
        with self.lock:
            now, usage = self.clock(), {}
            for (principal, kind), window in self.windows.items():
                usage.setdefault(principal, {})[kind] = sum(1 for t in window if t > now - 60)
            return usage

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.log.append(entry)


def _strings(value: Any, *, upper: bool = False) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise AdminError("methods and paths are a string or a list of strings")
    return tuple(item.upper() if upper else item for item in items) or None
