"""Benchmark: the API over HTTP on loopback (SPEC 6, issue 3).

Starts `pixelmerge serve` (gunicorn, a worker per core) on a fresh SQLite database and local
storage, then measures with concurrent keep-alive clients, in rounds so that noise falls on all
scenarios alike:
- trivial: GET /healthz (the floor of the same server);
- cache hit: POST /api/v1/renders with a request rendered before (answered from storage);
- fresh render: POST /api/v1/renders of the standard card with a new price each time, one
  request at a time, each next to a render of the same card (same format, a new price too) in
  this process, alternating, so that the renderer's own time is measured under the same
  conditions.

Run: .venv/bin/python bench/http_api.py [--requests 2000] [--clients 8] [--markdown]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis() -> tuple[subprocess.Popen, str]:
    """A Redis of its own, as production runs (rate-limit counters live there)."""
    port = free_port()
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    return process, f"redis://127.0.0.1:{port}/0"


def start_server(data: Path, port: int, redis_url: str) -> subprocess.Popen:
    # the benchmark measures the server, not its protections: no rate limit, no quota
    env = {**os.environ, "PIXELMERGE_DATA": str(data), "PUBLIC_URL": f"http://127.0.0.1:{port}",
           "PIXELMERGE_RATE_LIMIT": "100000000 per minute", "PIXELMERGE_MONTHLY_QUOTA": "0",
           "REDIS_URL": redis_url}
    out = subprocess.run([sys.executable, "-m", "webapp.cli", "bootstrap"], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    token = next(line.split(": ")[-1] for line in out.splitlines() if "API key" in line)
    server = subprocess.Popen([sys.executable, "-m", "webapp.cli", "serve", "--port", str(port)],
                              env={**env, "PIXELMERGE_TOKEN": token}, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server.token = token  # type: ignore[attr-defined]
    wait_until_up(port)
    return server


def wait_until_up(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


class Client:
    def __init__(self, port: int, token: str):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: dict | None = None) -> float:
        payload = json.dumps(body) if body is not None else None
        start = time.perf_counter()
        self.connection.request(method, path, body=payload, headers=self.headers)
        response = self.connection.getresponse()
        response.read()
        elapsed = time.perf_counter() - start
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: HTTP {response.status}")
        return elapsed


def run_concurrent(port: int, token: str, clients: int, count: int, make_call) -> tuple:
    samples: list[float] = []
    errors: list[Exception] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        client = Client(port, token)
        try:
            mine = [make_call(client, index * count + i) for i in range(count)]
        except Exception as exc:  # surfaced below: a benchmark must not hide failures
            with lock:
                errors.append(exc)
            return
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return samples, time.perf_counter() - start


CARD_VARIABLES = {"title": "The summer collection is here: light linen shirts",
                  "subtitle": "Free shipping on orders over $50"}


def scenarios(template_id: int) -> dict:
    hit_body = {"template": template_id, "variables": {**CARD_VARIABLES, "price": 49}}
    return {
        "trivial GET /healthz": lambda c, i: c.call("GET", "/healthz"),
        "cache hit POST /renders": lambda c, i: c.call("POST", "/api/v1/renders", hit_body),
    }


def own_renderer():
    """A function rendering the card in this process with a new price each call."""
    from renderer import load_template, render
    from renderer.api import directory_assets

    tpl = load_template(ROOT / "renderer" / "demo" / "card.json")
    assets = directory_assets(ROOT / "renderer" / "demo")

    def once(i: int) -> float:
        start = time.perf_counter()
        render(tpl, {**CARD_VARIABLES, "price": 10_000 + i}, format="png", assets=assets)
        return time.perf_counter() - start

    for i in range(10):  # warm-up
        once(i)
    return once


def fresh_next_to_own(port: int, token: str, template_id: int, count: int) -> tuple:
    """Fresh renders over HTTP, one at a time, each next to one render of the same card in this
    process: the two alternate, so the machine's noise falls on both alike."""
    client, own = Client(port, token), own_renderer()
    for i in range(10):  # warm-up
        client.call("POST", "/api/v1/renders", fresh_body(template_id, 20_000 + i))
    samples, own_samples, wall = [], [], 0.0
    for i in range(count):
        own_samples.append(own(100 + i))
        samples.append(client.call("POST", "/api/v1/renders", fresh_body(template_id,
                                                                          20_100 + i)))
        wall += samples[-1]
    return samples, wall, statistics.median(own_samples)


def fresh_body(template_id: int, price: int) -> dict:
    return {"template": template_id, "variables": {**CARD_VARIABLES, "price": price}}


def summarize(samples: list[float], wall: float) -> dict:
    ordered = sorted(samples)
    return {"rps": len(samples) / wall, "p50": statistics.median(ordered) * 1000,
            "p99": ordered[int(len(ordered) * 0.99) - 1] * 1000, "n": len(samples)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="per scenario")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--fresh", type=int, default=150, help="fresh renders")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pixelmerge-bench-") as tmp:
        port = free_port()
        redis, redis_url = start_redis()
        server = start_server(Path(tmp), port, redis_url)
        try:
            report(measure(port, server.token, args), args)  # type: ignore[attr-defined]
        finally:
            server.terminate()
            server.wait(timeout=30)
            redis.terminate()


def measure(port: int, token: str, args) -> dict:
    template_id = 1  # the bootstrap's Product card
    calls = scenarios(template_id)
    results: dict[str, list] = {name: [[], 0.0] for name in calls}
    rounds = 10  # new connections each round: how they fall on the workers varies, so many
    per_client = max(1, args.requests // (args.clients * rounds))
    for call in calls.values():  # warm-up: connections, caches, the first render
        run_concurrent(port, token, args.clients, 5, call)
    for _ in range(rounds):
        for name, call in calls.items():
            samples, wall = run_concurrent(port, token, args.clients, per_client, call)
            results[name][0].extend(samples)
            results[name][1] += wall
    fresh_samples, fresh_wall, own = fresh_next_to_own(port, token, template_id, args.fresh)
    summary = {name: summarize(*value) for name, value in results.items()}
    summary["fresh render POST /renders (1 client)"] = summarize(fresh_samples, fresh_wall)
    return {"summary": summary, "own_ms": own * 1000, "clients": args.clients}


def print_table(rows: list[tuple[str, ...]], *, markdown: bool) -> None:
    """The first row is the header: a Markdown table, or aligned columns."""
    if markdown:
        print("| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]))
        for row in rows[1:]:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


def report(result: dict, args) -> None:
    summary, own = result["summary"], result["own_ms"]
    trivial = summary["trivial GET /healthz"]
    hit = summary["cache hit POST /renders"]
    fresh = summary["fresh render POST /renders (1 client)"]
    print(f"HTTP on loopback, gunicorn with a worker per core ({os.cpu_count()} cores), "
          f"{result['clients']} keep-alive clients; renderer's own time for the card: "
          f"{own:.2f} ms")
    rows = [("scenario", "requests", "req/s", "p50 ms", "p99 ms")]
    rows += [(name, str(s["n"]), f"{s['rps']:.0f}", f"{s['p50']:.2f}", f"{s['p99']:.2f}")
             for name, s in summary.items()]
    print_table(rows, markdown=args.markdown)
    print(f"cache hit / trivial: p50 {hit['p50'] / trivial['p50']:.2f}x, "
          f"throughput {trivial['rps'] / hit['rps']:.2f}x (target <= 1.5x)")
    print(f"fresh render p50 / renderer's own time: {fresh['p50'] / own:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
