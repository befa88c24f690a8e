"""Benchmark: live banners and A/B experiments over HTTP on loopback (SPEC 8 and 9, issue 6).

Starts `pixelmerge serve` (gunicorn, a worker per core), a `pixelmerge worker` for the refresh
jobs and a JSON feed on loopback whose answer changes every second and takes --source-delay
seconds to arrive. A live banner follows the feed (refresh every second) and an experiment
splits two variants. With concurrent keep-alive clients, in rounds so that noise falls on all
scenarios alike, it measures:
- GET /r/<key>.png: a stored render (the reference);
- GET /live/<slug>.png: the banner's current picture;
- GET /x/<id>.png?v=<visitor>: a variant, with its impression counted in Redis.
It also reports the slowest /live answer (a request that waited on the source would take at
least --source-delay) and how many different pictures /live served while the feed changed.

Run: .venv/bin/python bench/live_ab.py [--requests 3000] [--clients 8] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from http_api import (
    Client,
    free_port,
    print_table,
    run_concurrent,
    start_redis,
    summarize,
    wait_until_up,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from fakes.feed import Feed  # noqa: E402  (the tests' JSON feed on loopback)

CARD = {"title": "Flash sale", "subtitle": "Live price", "price": 10}


def start(data: Path, port: int, redis_url: str) -> tuple[list[subprocess.Popen], str]:
    env = {**os.environ, "PIXELMERGE_DATA": str(data), "PUBLIC_URL": f"http://127.0.0.1:{port}",
           "PIXELMERGE_RATE_LIMIT": "100000000 per minute", "PIXELMERGE_MONTHLY_QUOTA": "0",
           "REDIS_URL": redis_url, "OUTBOUND_ALLOWLIST": "127.0.0.1/32"}
    out = subprocess.run([sys.executable, "-m", "webapp.cli", "bootstrap"], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    token = next(line.split(": ")[-1] for line in out.splitlines() if "API key" in line)
    server = subprocess.Popen([sys.executable, "-m", "webapp.cli", "serve", "--port", str(port)],
                              env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([sys.executable, "-m", "webapp.cli", "worker", "live"], env=env,
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until_up(port)
    return [server, worker], token


def api(client: Client, method: str, path: str, body: dict | None = None) -> dict:
    client.connection.request(method, f"/api/v1{path}",
                              body=json.dumps(body) if body is not None else None,
                              headers=client.headers)
    response = client.connection.getresponse()
    data = response.read()
    if response.status >= 300:
        raise RuntimeError(f"{method} {path}: HTTP {response.status} {data[:300]!r}")
    return json.loads(data) if data else {}


def setup(port: int, token: str, feed: Feed) -> dict[str, str]:
    client = Client(port, token)
    feed.set({"product": CARD})
    source = api(client, "POST", "/sources", {"type": "json_http", "name": "Feed", "config": {
        "url": feed.url(), "select": "product", "refresh_seconds": 1}})
    banner = api(client, "POST", "/live", {"template": 1, "source": source["id"]})
    variants = [api(client, "POST", "/templates", {**api(client, "GET", "/templates/1")
                                                   ["content"], "name": f"Card {n}"})
                for n in range(2)]
    experiment = api(client, "POST", "/experiments", {
        "name": "Bench", "goal_url": "https://shop.example/", "variables": CARD,
        "variants": [{"template": v["id"]} for v in variants]})
    path = lambda url: "/" + url.split("/", 3)[3]  # noqa: E731
    return {"r": path(banner["render_url"]), "live": path(banner["url"]),
            "x": path(experiment["image_url"]), "banner": str(banner["id"])}


def change_every_second(feed: Feed, stop: threading.Event) -> None:
    price = CARD["price"]
    while not stop.wait(1.0):
        price += 1
        feed.set({"product": {**CARD, "price": price}})


class Recorder:
    """Wraps GET calls to keep the ETags /live answered with."""

    def __init__(self) -> None:
        self.etags: set[str] = set()
        self.lock = threading.Lock()

    def get(self, client: Client, path: str) -> float:
        start = time.perf_counter()
        client.connection.request("GET", path)
        response = client.connection.getresponse()
        response.read()
        elapsed = time.perf_counter() - start
        if response.status != 200:
            raise RuntimeError(f"GET {path}: HTTP {response.status}")
        with self.lock:
            self.etags.add(response.getheader("ETag") or "")
        return elapsed


def measure(port: int, token: str, paths: dict[str, str], args) -> dict:
    recorder = Recorder()
    calls = {
        "GET /r/<key>.png": lambda c, i: recorder.get(c, paths["r"]),
        "GET /live/<slug>.png": lambda c, i: recorder.get(c, paths["live"]),
        "GET /x/<id>.png?v=…": lambda c, i: recorder.get(c, f"{paths['x']}?v=visitor-{i}"),
    }
    results: dict[str, list] = {name: [[], 0.0] for name in calls}
    rounds = 4
    per_client = max(1, args.requests // (args.clients * rounds))
    for call in calls.values():
        run_concurrent(port, token, args.clients, 5, call)
    live_etags: set[str] = set()
    for _ in range(rounds):
        for name, call in calls.items():
            recorder.etags = set()
            samples, wall = run_concurrent(port, token, args.clients, per_client, call)
            results[name][0].extend(samples)
            results[name][1] += wall
            if name.startswith("GET /live"):
                live_etags |= recorder.etags
    summary = {name: summarize(*value) for name, value in results.items()}
    live_max = max(results["GET /live/<slug>.png"][0]) * 1000
    return {"summary": summary, "live_max_ms": live_max, "live_pictures": len(live_etags)}


def banner_state(port: int, token: str, banner_id: str) -> dict:
    return api(Client(port, token), "GET", f"/live/{banner_id}")


def report(result: dict, state: dict, args) -> None:
    summary = result["summary"]
    reference = summary["GET /r/<key>.png"]
    print(f"HTTP on loopback, gunicorn with a worker per core ({os.cpu_count()} cores), "
          f"{args.clients} keep-alive clients; the feed changes every second and answers in "
          f"{args.source_delay * 1000:.0f} ms")
    rows = [("scenario", "requests", "req/s", "p50 ms", "p99 ms", "req/s vs /r/")]
    rows += [(name, str(s["n"]), f"{s['rps']:.0f}", f"{s['p50']:.2f}", f"{s['p99']:.2f}",
              f"{reference['rps'] / s['rps']:.2f}x") for name, s in summary.items()]
    print_table(rows, markdown=args.markdown)
    print(f"slowest /live answer: {result['live_max_ms']:.1f} ms (the source takes "
          f"{args.source_delay * 1000:.0f} ms); /live served {result['live_pictures']} "
          f"different pictures; the banner refreshed {state['refreshes']} times and rendered "
          f"{state['renders']} pictures (status {state['status']})")
    for name in ("GET /live/<slug>.png", "GET /x/<id>.png?v=…"):
        ratio = reference["rps"] / summary[name]["rps"]
        print(f"{name}: {ratio:.2f}x the cost of /r/ in throughput (target <= 1.5x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="per scenario")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--source-delay", type=float, default=0.3)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    feed, stop = Feed(), threading.Event()
    with tempfile.TemporaryDirectory(prefix="pixelmerge-bench-") as tmp:
        port = free_port()
        redis, redis_url = start_redis()
        processes, token = start(Path(tmp), port, redis_url)
        try:
            paths = setup(port, token, feed)
            feed.delay = args.source_delay
            changer = threading.Thread(target=change_every_second, args=(feed, stop))
            changer.start()
            result = measure(port, token, paths, args)
            stop.set()
            changer.join()
            report(result, banner_state(port, token, paths["banner"]), args)
        finally:
            stop.set()
            for process in processes:
                process.terminate()
                process.wait(timeout=30)
            redis.terminate()
            feed.close()


if __name__ == "__main__":
    main()
