"""Benchmark: a batch of the standard card through the queue (RQ workers) next to the CLI.

In one run, on the same rows (each a new title and price): `pixelmerge render --jobs 1` and
`--jobs 2`, then `POST /api/v1/batches` completed by one worker and by two workers (`pixelmerge
worker`, a Redis and a SQLite database of its own, local storage). Images per second from the
start of the command (or the batch request) to the last file (or the batch's completion).

The four are run in two passes, the second in the reverse order (cli 1, queue 1, queue 2, cli
2, then cli 2, queue 2, queue 1, cli 1: the paths each target compares run next to each other),
each pass on rows of its own so that nothing comes from the first pass's renders; a path's
figure is its items over its time in both passes. This VM's speed drifts by 10-20 % within a
minute, and a drift then weighs on both sides of each comparison alike.

Run: .venv/bin/python bench/batch_throughput.py [--items 2000] [--passes 2] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CARD = ROOT / "renderer" / "demo" / "card.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rows(count: int, run: int = 0) -> list[dict]:
    return [{"title": f"Collection {i + run * count}: light linen shirts for long summer "
                      "evenings",
             "subtitle": "Free shipping on orders over $50", "price": 20 + i % 80,
             "sku": f"S-{i}"} for i in range(count)]


def cli_time(data: Path, out: Path, jobs: int, count: int) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "webapp.cli", "render", str(CARD), "--data",
                    str(data), "--out", str(out), "--jobs", str(jobs)], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    assert len(list(out.iterdir())) == count
    return elapsed


def queue_time(env: dict, workers: int, items: list[dict], app, token: str) -> float:
    procs = [subprocess.Popen([sys.executable, "-m", "webapp.cli", "worker", "batches"],
                              env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for _ in range(workers)]
    try:
        time.sleep(3)  # workers up and waiting
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        start = time.perf_counter()
        answer = client.post("/api/v1/batches", headers=headers, json={
            "template": 1, "items": [{"variables": v} for v in items]})
        assert answer.status_code == 202, answer.json
        batch_id = answer.json["id"]
        while True:  # progress only: the items list of a big batch is not free to build
            batch = client.get(f"/api/v1/batches/{batch_id}?items=false",
                               headers=headers).json
            if batch["status"] == "completed":
                break
            time.sleep(0.25)
        elapsed = time.perf_counter() - start
        assert batch["done"] == len(items), batch["failed"]
        return elapsed
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)


PATHS = {"cli --jobs 1": ("cli", 1), "queue, 1 worker": ("queue", 1),
         "queue, 2 workers": ("queue", 2), "cli --jobs 2": ("cli", 2)}  # in the order they run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pixelmerge-batch-") as tmp:
        report(run(Path(tmp), args.items, args.passes), args)


def run(tmp: Path, count: int, passes: int) -> dict[str, list[float]]:
    """Seconds per path and pass."""
    redis_port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        queue = Queue(tmp, f"redis://127.0.0.1:{redis_port}/0")
        times: dict[str, list[float]] = {path: [] for path in PATHS}
        for number in range(passes):
            items = rows(count, number)
            data = tmp / f"rows{number}.json"
            data.write_text(json.dumps(items))
            for path in list(PATHS) if number % 2 == 0 else reversed(PATHS):
                kind, amount = PATHS[path]
                if kind == "cli":
                    took = cli_time(data, tmp / f"cli{amount}-{number}", amount, count)
                else:
                    took = queue.time(amount, items)
                times[path].append(took)
        return times
    finally:
        redis.terminate()


class Queue:
    """An account per worker count (its own SQLite database and files), bootstrapped once."""

    def __init__(self, tmp: Path, redis_url: str):
        self.tmp, self.redis_url, self.accounts = tmp, redis_url, {}

    def time(self, workers: int, items: list[dict]) -> float:
        if workers not in self.accounts:
            self.accounts[workers] = self._account(workers)
        env, app, token = self.accounts[workers]
        return queue_time(env, workers, items, app, token)

    def _account(self, workers: int):
        home = self.tmp / f"queue{workers}"
        env = {**os.environ, "PIXELMERGE_DATA": str(home), "REDIS_URL": self.redis_url,
               "PIXELMERGE_MONTHLY_QUOTA": "0", "PIXELMERGE_MAX_BATCH_ITEMS": "100000"}
        out = subprocess.run([sys.executable, "-m", "webapp.cli", "bootstrap"], env=env,
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
        token = next(line.split(": ")[-1] for line in out.splitlines() if "API key" in line)
        os.environ.update({k: env[k] for k in ("PIXELMERGE_DATA", "REDIS_URL",
                                                "PIXELMERGE_MONTHLY_QUOTA",
                                                "PIXELMERGE_MAX_BATCH_ITEMS")})
        sys.path.insert(0, str(ROOT))
        from webapp import create_app

        return env, create_app({"RATE_LIMIT": "100000000 per minute"}), token


def report(times: dict[str, list[float]], args) -> None:
    rate = {path: args.items * len(took) / sum(took) for path, took in times.items()}
    passes = len(next(iter(times.values())))
    print(f"{args.items} items of the standard card (PNG), {os.cpu_count()} cores, "
          f"{passes} passes")
    header = ["path", *(f"pass {n + 1} images/s" for n in range(passes)), "images/s"]
    lines = [[path, *(f"{args.items / took:.1f}" for took in times[path]), f"{rate[path]:.1f}"]
             for path in sorted(PATHS)]  # cli 1, cli 2, queue 1, queue 2
    if args.markdown:
        print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        print("  ".join(f"{cell:>18}" for cell in header))
        for line in lines:
            print("  ".join(f"{cell:>18}" for cell in line))
    cli1, cli2 = rate["cli --jobs 1"], rate["cli --jobs 2"]
    q1, q2 = rate["queue, 1 worker"], rate["queue, 2 workers"]
    print(f"queue / CLI: 1 worker {q1 / cli1:.1%} of --jobs 1, 2 workers {q2 / cli2:.1%} of "
          f"--jobs 2 (target >= 85%); 2 workers / 1 worker {q2 / q1:.2f}x (target >= 1.7x)")


if __name__ == "__main__":
    main()
