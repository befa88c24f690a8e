"""The thread pool of ``pixelmerge serve``'s worker: work goes to the thread that went idle
last; nothing is lost, run twice or run past the limit of threads."""

from __future__ import annotations

import threading
import time

import pytest

from webapp.server import HotThreadPool


def idle_threads(pool: HotThreadPool, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(pool._idle) < count:
        assert time.monotonic() < deadline, "the pool's threads did not go idle"
        time.sleep(0.001)


def test_work_goes_to_the_thread_that_went_idle_last() -> None:
    pool = HotThreadPool(4)
    release = threading.Event()
    started = [pool.submit(release.wait) for _ in range(4)]  # four threads, all busy
    release.set()
    for future in started:
        future.result(timeout=5)
    idle_threads(pool, 4)
    last = pool._idle[-1]
    names = {pool.submit(lambda: threading.current_thread().name).result(timeout=5)
             for _ in range(20)}  # one after the other, as a quiet server gets them
    assert len(names) == 1
    assert pool._idle[-1] is last
    pool.shutdown()


def test_at_most_max_workers_run_and_the_rest_wait_in_order() -> None:
    pool = HotThreadPool(2)
    running, peak = [0], [0]
    lock = threading.Lock()
    gate = threading.Event()

    def task(number: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        gate.wait(5)
        with lock:
            running[0] -= 1
        return number * 10

    futures = [pool.submit(task, number) for number in range(6)]
    time.sleep(0.05)
    assert len(pool._threads) == 2 and peak[0] == 2
    gate.set()
    assert [future.result(timeout=5) for future in futures] == [0, 10, 20, 30, 40, 50]
    assert peak[0] == 2
    pool.shutdown()

    single, order, hold = HotThreadPool(1), [], threading.Event()
    first = single.submit(hold.wait, 5)
    waiting = [single.submit(order.append, number) for number in range(5)]
    assert order == [] and len(single._waiting) == 5
    hold.set()
    for future in waiting:
        future.result(timeout=5)
    assert first.result(timeout=5) is True
    assert order == [0, 1, 2, 3, 4]  # the waiting ones in the order they came
    single.shutdown()


def test_a_failing_task_fails_its_future_and_the_thread_goes_on() -> None:
    pool = HotThreadPool(1)

    def boom() -> None:
        raise ValueError("no picture")

    with pytest.raises(ValueError, match="no picture"):
        pool.submit(boom).result(timeout=5)
    assert pool.submit(lambda: "next").result(timeout=5) == "next"
    assert len(pool._threads) == 1
    pool.shutdown()


def test_shutdown_ends_idle_threads_refuses_new_work_and_cancels_on_request() -> None:
    pool = HotThreadPool(1)
    gate = threading.Event()
    busy = pool.submit(gate.wait, 5)
    queued = pool.submit(lambda: "never")
    pool.shutdown(wait=False, cancel_futures=True)
    assert queued.cancelled()
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(lambda: None)
    gate.set()
    assert busy.result(timeout=5) is True
    pool._threads[0].join(timeout=5)
    assert not pool._threads[0].is_alive()

    quiet = HotThreadPool(3)
    for future in [quiet.submit(time.sleep, 0.01) for _ in range(3)]:
        future.result(timeout=5)
    idle_threads(quiet, 3)
    quiet.shutdown(wait=True)  # wakes the idle threads, which end
    assert not any(thread.is_alive() for thread in quiet._threads)
