"""The gunicorn worker of ``pixelmerge serve``: gthread, with two changes for latency.

- Requests go to the thread that finished last (``HotThreadPool``). gunicorn's pool is a
  ``ThreadPoolExecutor``, whose idle threads take work in turn; at low load each request then
  ran on the thread that had waited longest, its memory and stack gone cold: 0.6 ms of a fresh
  render once four threads had been used (docs/benchmarks.md).
- The process's threads share one malloc arena (``one_malloc_arena``).
"""

from __future__ import annotations

import collections
import ctypes
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

from gunicorn.workers.gthread import ThreadWorker


class Worker(ThreadWorker):
    def init_process(self) -> None:
        one_malloc_arena()  # before any thread starts
        super().init_process()

    def get_thread_pool(self) -> Executor:
        return HotThreadPool(self.cfg.threads)


def one_malloc_arena() -> None:
    """A server process's threads share one glibc malloc arena (they share the GIL anyway).
    With an arena per thread, a request often found its memory in an arena whose freed pages
    had gone back to the system: 44 page faults per fresh render, none with one arena. Freed
    memory is kept up to 64 MB rather than returned after each render. Nothing happens with
    another C library."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # (the process's own symbols: its C library's)
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8  # glibc's malloc.h
    mallopt(m_arena_max, 1)
    mallopt(m_trim_threshold, 64 << 20)
    mallopt(m_mmap_threshold, 32 << 20)


class _Idle:
    """A thread waiting for work."""

    def __init__(self) -> None:
        self.wake = threading.Event()
        self.task: tuple | None = None


class HotThreadPool(Executor):
    """Up to ``max_workers`` threads; a task goes to the thread that went idle last (a stack),
    or waits in order for the next one to finish. Threads start on demand and stay.

    Unlike ``ThreadPoolExecutor``'s, the threads are daemons: the interpreter does not wait for
    a task still running when it exits. gunicorn itself waits for the requests in flight before
    a worker exits (up to ``graceful_timeout``, after which the arbiter kills it anyway)."""

    def __init__(self, max_workers: int) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._max = max_workers
        self._lock = threading.Lock()
        self._idle: list[_Idle] = []
        self._waiting: collections.deque[tuple] = collections.deque()
        self._threads: list[threading.Thread] = []
        self._closed = False

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        task = (future, fn, args, kwargs)
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if self._idle:
                idle = self._idle.pop()
                idle.task = task
                idle.wake.set()
            elif len(self._threads) < self._max:
                thread = threading.Thread(target=self._work, args=(task,), daemon=True,
                                          name=f"request-{len(self._threads)}")
                thread.start()  # (raises, and counts nothing, when no thread can start)
                self._threads.append(thread)
            else:
                self._waiting.append(task)
        return future

    def _work(self, task: tuple | None) -> None:
        idle = _Idle()
        while task is not None:
            future, fn, args, kwargs = task
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            task = future = None  # (drop references before waiting)
            with self._lock:
                if self._waiting:
                    task = self._waiting.popleft()
                    continue
                if self._closed:
                    return
                idle.wake.clear()
                self._idle.append(idle)
            idle.wake.wait()
            task, idle.task = idle.task, None

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            if cancel_futures:
                while self._waiting:
                    self._waiting.popleft()[0].cancel()
        for each in idle:
            each.task = None
            each.wake.set()
        if wait:
            for thread in list(self._threads):
                if thread is not threading.current_thread():
                    thread.join()
