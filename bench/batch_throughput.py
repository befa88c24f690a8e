"""Benchmark: a batch of the standard card through the queue (RQ workers) next to the CLI.

In one run, on the same rows (each a new title and price): `pixelmerge render --jobs 1` and
`--jobs 2`, then `POST /api/v1/batches` completed by one worker and by two workers (`pixelmerge
worker`, a Redis and a SQLite database of its own, local storage). Images per second from the
start of the command (or the batch request) to the last file (or the batch's completion).

Run: .venv/bin/python bench/batch_throughput.py [--items 2000] [--markdown]
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


def rows(count: int) -> list[dict]:
    return [{"title": f"Collection {i}: light linen shirts for long summer evenings",
             "subtitle": "Free shipping on orders over $50", "price": 20 + i % 80,
             "sku": f"S-{i}"} for i in range(count)]


def cli_rate(data: Path, out: Path, jobs: int, count: int) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "webapp.cli", "render", str(CARD), "--data",
                    str(data), "--out", str(out), "--jobs", str(jobs)], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    assert len(list(out.iterdir())) == count
    return count / elapsed


def queue_rate(env: dict, workers: int, items: list[dict], app, token: str) -> float:
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
        return len(items) / elapsed
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pixelmerge-batch-") as tmp:
        report(run(Path(tmp), args.items), args)


def run(tmp: Path, count: int) -> dict:
    items = rows(count)
    data = tmp / "rows.json"
    data.write_text(json.dumps(items))
    results = {f"cli --jobs {jobs}": cli_rate(data, tmp / f"cli{jobs}", jobs, count)
               for jobs in (1, 2)}
    redis_port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        results.update(queued(tmp, items, f"redis://127.0.0.1:{redis_port}/0"))
    finally:
        redis.terminate()
    return results


def queued(tmp: Path, items: list[dict], redis_url: str) -> dict:
    results = {}
    for workers in (1, 2):
        home = tmp / f"queue{workers}"
        env = {**os.environ, "PIXELMERGE_DATA": str(home), "REDIS_URL": redis_url,
               "PIXELMERGE_MONTHLY_QUOTA": "0", "PIXELMERGE_MAX_BATCH_ITEMS": "100000"}
        out = subprocess.run([sys.executable, "-m", "webapp.cli", "bootstrap"], env=env,
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
        token = next(line.split(": ")[-1] for line in out.splitlines() if "API key" in line)
        os.environ.update({k: env[k] for k in ("PIXELMERGE_DATA", "REDIS_URL",
                                                "PIXELMERGE_MONTHLY_QUOTA",
                                                "PIXELMERGE_MAX_BATCH_ITEMS")})
        sys.path.insert(0, str(ROOT))
        from webapp import create_app

        app = create_app({"RATE_LIMIT": "100000000 per minute"})
        results[f"queue, {workers} worker{'s' if workers > 1 else ''}"] = queue_rate(
            env, workers, items, app, token)
    return results


def report(results: dict, args) -> None:
    cli1, cli2 = results["cli --jobs 1"], results["cli --jobs 2"]
    q1, q2 = results["queue, 1 worker"], results["queue, 2 workers"]
    print(f"{args.items} items of the standard card (PNG), {os.cpu_count()} cores")
    rows_ = [("path", "images/s")] + [(name, f"{rate:.1f}") for name, rate in results.items()]
    if args.markdown:
        print("| path | images/s |\n|---|---|")
        for name, rate in rows_[1:]:
            print(f"| {name} | {rate} |")
    else:
        for name, rate in rows_:
            print(f"{name:>20}  {rate:>9}")
    print(f"queue / CLI: 1 worker {q1 / cli1:.0%} of --jobs 1, 2 workers {q2 / cli2:.0%} of "
          f"--jobs 2 (target >= 85%); 2 workers / 1 worker {q2 / q1:.2f}x (target >= 1.7x)")


if __name__ == "__main__":
    main()
