"""Benchmark: Google Sheets bindings against the Sheets emulator — a first sync and a re-sync.

In one run, with a Redis, a Sheets emulator (`pixelmerge sheets-emulator`, a process of its
own), two workers (`pixelmerge worker`, all queues) and a SQLite database of its own, local
storage, everything on 127.0.0.1: a batch of N rows of the standard card (`POST
/api/v1/batches`, the reference), then a sheet of N other rows bound to the card, synced from
scratch (`POST /bindings/{id}/sync` until its run completes) and synced again after 20 rows
were edited. Wall time, Sheets requests (the run's count and the emulator's request log) and
renders done. Targets: the first sync within 1.25x of the batch; the re-sync renders exactly
the edited rows; a sync of 10,000 rows makes at most 25 requests (SPEC 7; `--big`).

Run: .venv/bin/python bench/sheets_sync.py [--rows 2000] [--edits 20] [--big] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from batch_throughput import free_port, rows  # the same rows as the batch benchmark

ROOT = Path(__file__).resolve().parent.parent
CARD = ROOT / "renderer" / "demo" / "card.json"
HEADER = ["title", "subtitle", "price", "sku"]
OUTPUT = {"url_column": "Image", "status_column": "Status", "thumbnail_column": "Preview"}
WORKERS = 2
WARMUP = 50  # two chunks of 25: both workers load fonts and images before the timed batch


def sheet_rows(count: int, tag: str = "") -> list[list]:
    """Other data of the same lengths, so that the sync really renders (no cache hits)."""
    return [[f"Collection {i}: light linen shirts for warm summer evenings{tag}",
             "Free shipping on orders over $50", 20 + i % 80, f"S-{i}"] for i in range(count)]


class Emulator:
    """The admin API of a `pixelmerge sheets-emulator` process, over HTTP."""

    def __init__(self, url: str, credentials: Path):
        self.url, self.credentials = url, credentials
        self.http = requests.Session()

    def admin(self, method: str, path: str, body=None, **params):
        kwargs = {"json": body if body is not None else {}} if method != "GET" else {}
        answer = self.http.request(method, f"{self.url}/_emulator{path}", params=params,
                                   timeout=60, **kwargs)
        if not answer.ok:
            raise RuntimeError(f"emulator {method} {path}: {answer.status_code} {answer.text}")
        return answer.json()

    def wait(self, proc: subprocess.Popen, seconds: float = 30.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the emulator exited with {proc.returncode}")
            try:
                self.admin("GET", "/spreadsheets")
                if self.credentials.exists():
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the emulator did not start")

    @property
    def email(self) -> str:
        return json.loads(self.credentials.read_text())["client_email"]

    def create(self, title: str, values: list[list]) -> dict:
        return self.admin("POST", "/spreadsheets", {
            "title": title, "shared_with": [self.email],
            "sheets": {"Sheet1": {"values": [HEADER, *values], "rows": len(values) + 1,
                                  "cols": 26}}})

    def values(self, sid: str) -> list[list[str]]:
        return self.admin("GET", f"/spreadsheets/{sid}/cells", range="Sheet1")["values"]

    def set_cells(self, sid: str, range_: str, values: list[list]) -> None:
        self.admin("POST", f"/spreadsheets/{sid}/cells", {"range": range_, "values": values})

    def clear_log(self) -> None:
        self.admin("DELETE", "/requests")

    def v4_requests(self) -> int:
        return sum(1 for entry in self.admin("GET", "/requests")["requests"]
                   if entry["path"].startswith("/v4/"))


class Api:
    """The in-process app's test client with the bootstrap key."""

    def __init__(self, app, token: str):
        self.client = app.test_client()
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, status: int, body=None) -> dict:
        answer = self.client.open(f"/api/v1{path}", method=method, headers=self.headers,
                                  json=body)
        assert answer.status_code == status, (method, path, answer.status_code, answer.json)
        return answer.json


def wait_until(check, what: str, seconds: float, every: float = 0.25):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise TimeoutError(f"{what}: not done after {seconds:.0f} s")


def batch(api: Api, template: int, items: list[dict]) -> float:
    """Seconds from POST /batches to the batch's completion."""
    start = time.perf_counter()
    batch_id = api.call("POST", "/batches", 202, {
        "template": template, "items": [{"variables": v} for v in items]})["id"]

    def completed():
        found = api.call("GET", f"/batches/{batch_id}?items=false", 200)
        return found if found["status"] == "completed" else None

    found = wait_until(completed, f"batch {batch_id}", 60 + len(items))
    elapsed = time.perf_counter() - start
    assert found["done"] == len(items), found
    return elapsed


def bind(api: Api, emulator: Emulator, template: int, title: str, values: list[list]):
    book = emulator.create(title, values)
    source = api.call("POST", "/sources", 201, {
        "type": "google_sheets", "name": title,
        "config": {"spreadsheet": book["url"], "worksheet": "Sheet1"}})["id"]
    binding = api.call("POST", "/bindings", 201, {
        "template": template, "source": source, "output": OUTPUT, "poll_seconds": 0})["id"]
    return book["id"], binding


def sync(api: Api, emulator: Emulator, binding: int, rows_: int) -> dict:
    """One sync, timed from the request to the run's completion; the run object with
    ``seconds`` and ``emulator_requests`` (the /v4/ requests in the emulator's log)."""
    emulator.clear_log()
    start = time.perf_counter()
    run_id = api.call("POST", f"/bindings/{binding}/sync", 202)["id"]

    def finished():
        runs = api.call("GET", f"/bindings/{binding}/runs", 200)["data"]
        run = next(r for r in runs if r["id"] == run_id)
        return run if run["status"] in ("completed", "failed") else None

    run = wait_until(finished, f"sync run {run_id}", 60 + rows_)
    run["seconds"] = time.perf_counter() - start
    assert run["status"] == "completed", run
    run["emulator_requests"] = emulator.v4_requests()
    return run


def check_sheet(emulator: Emulator, sid: str, count: int) -> dict[int, str]:
    """Every data row has a URL and `done`; row number -> URL."""
    values = emulator.values(sid)
    header = values[0]
    url_col, status_col = header.index("Image"), header.index("Status")
    assert len(values) == count + 1, (len(values), count)
    urls = {}
    for number, line in enumerate(values[1:], start=2):
        line = line + [""] * (len(header) - len(line))
        assert line[url_col].startswith("http") and line[url_col].endswith(".png"), (
            number, line)
        assert line[status_col] == "done", (number, line)
        urls[number] = line[url_col]
    return urls


def start_processes(tmp: Path, procs: list, logs: dict) -> tuple[dict, str, Emulator]:
    def spawn(name: str, command: list[str], env=None) -> subprocess.Popen:
        logs[name] = tmp / f"{name}.log"
        with logs[name].open("wb") as log:
            proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log,
                                    stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc

    redis_port, emulator_port = free_port(), free_port()
    spawn("redis", ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no"])
    credentials = tmp / "service-account.json"
    emulator = Emulator(f"http://127.0.0.1:{emulator_port}", credentials)
    proc = spawn("emulator", [sys.executable, "-m", "webapp.cli", "sheets-emulator", "--port",
                              str(emulator_port), "--credentials", str(credentials)])
    emulator.wait(proc)
    env = {**os.environ, "PIXELMERGE_DATA": str(tmp / "data"),
           "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "PIXELMERGE_MONTHLY_QUOTA": "0",
           "PIXELMERGE_MAX_BATCH_ITEMS": "100000", "GOOGLE_SHEETS_API_URL": emulator.url,
           "GOOGLE_SERVICE_ACCOUNT_FILE": str(credentials)}
    out = subprocess.run([sys.executable, "-m", "webapp.cli", "bootstrap"], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    token = next(line.split(": ")[-1] for line in out.splitlines() if "API key" in line)
    for n in range(WORKERS):
        spawn(f"worker{n}", [sys.executable, "-m", "webapp.cli", "worker"], env=env)
    return env, token, emulator


def stop(procs: list) -> None:
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.terminate()
    for proc in reversed(procs):
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(tmp: Path, args) -> dict:
    procs: list[subprocess.Popen] = []
    logs: dict[str, Path] = {}
    try:
        env, token, emulator = start_processes(tmp, procs, logs)
        return measure(env, token, emulator, args)
    except BaseException:
        for name, path in logs.items():
            if name != "redis" and path.exists():
                tail = path.read_text(errors="replace").splitlines()[-15:]
                print(f"--- {name} (last lines)", *tail, sep="\n", file=sys.stderr)
        raise
    finally:
        stop(procs)


def measure(env: dict, token: str, emulator: Emulator, args) -> dict:
    os.environ.update({k: env[k] for k in (
        "PIXELMERGE_DATA", "REDIS_URL", "PIXELMERGE_MONTHLY_QUOTA", "PIXELMERGE_MAX_BATCH_ITEMS",
        "GOOGLE_SHEETS_API_URL", "GOOGLE_SERVICE_ACCOUNT_FILE")})
    sys.path.insert(0, str(ROOT))
    from webapp import create_app

    api = Api(create_app({"RATE_LIMIT": "100000000 per minute"}), token)
    name = json.loads(CARD.read_text())["name"]
    template = next(t["id"] for t in api.call("GET", "/templates", 200)["data"]
                    if t["name"] == name)
    time.sleep(3)  # workers up and waiting
    batch(api, template, [{**v, "title": f"Warm-up {i}"} for i, v in enumerate(rows(WARMUP))])
    results = {"rows": args.rows, "batch": batch(api, template, rows(args.rows))}

    sid, binding = bind(api, emulator, template, "Bench catalogue", sheet_rows(args.rows))
    first = results["first"] = sync(api, emulator, binding, args.rows)
    assert first["to_render"] == first["rendered"] == args.rows, first
    urls = check_sheet(emulator, sid, args.rows)

    edited = sorted({2 + i * args.rows // args.edits for i in range(args.edits)})
    for number in edited:
        emulator.set_cells(sid, f"Sheet1!A{number}", [[
            f"Collection {number - 2}: light linen shirts for cool summer evenings"]])
    again = results["again"] = sync(api, emulator, binding, args.rows)
    after = check_sheet(emulator, sid, args.rows)
    changed = sorted(n for n in after if after[n] != urls[n])
    results["edited"], results["changed"] = len(edited), changed == edited
    assert again["to_render"] == len(edited), again

    if args.big:
        _, big = bind(api, emulator, template, "Bench big catalogue",
                      sheet_rows(args.big_rows, tag="!"))
        results["big"] = sync(api, emulator, big, args.big_rows)
    return results


def report(results: dict, args) -> None:
    n, batch_s = results["rows"], results["batch"]
    first, again = results["first"], results["again"]
    ratio = first["seconds"] / batch_s

    def requests_(run):
        return f"{run['requests']} (emulator log: {run['emulator_requests']})"

    table = [
        ("batch", f"{n} rows", f"{batch_s:.1f}", f"{n / batch_s:.1f} img/s", "-", "-"),
        ("first sync", f"{first['rows_seen']} rows", f"{first['seconds']:.1f}",
         f"{ratio:.2f}x the batch (target <= 1.25x)", str(first["rendered"]),
         requests_(first)),
        ("re-sync", f"{results['edited']} edited", f"{again['seconds']:.1f}",
         f"to render {again['to_render']}, current {again['rows_current']}",
         f"{again['rendered']} (target {results['edited']})", requests_(again)),
    ]
    if "big" in results:
        big = results["big"]
        table.append(("big first sync", f"{big['rows_seen']} rows", f"{big['seconds']:.1f}",
                      "requests only (target <= 25)", str(big["rendered"]), requests_(big)))
    head = ("run", "rows", "s", "", "renders", "Sheets requests")
    print("Run: .venv/bin/python bench/sheets_sync.py " + " ".join(sys.argv[1:]))
    print(f"{n} rows of the standard card (PNG), {WORKERS} workers, {os.cpu_count()} cores, "
          "Sheets emulator")
    if args.markdown:
        print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
        for line in table:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(line[i]) for line in (head, *table)) for i in range(len(head))]
        for line in (head, *table):
            print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    checks = [("first sync <= 1.25x batch", ratio <= 1.25),
              (f"re-sync renders exactly {results['edited']}",
               again["rendered"] == results["edited"]),
              ("re-sync changed the URLs of exactly the edited rows", results["changed"]),
              ("every row's Image cell holds a URL", True)]
    if "big" in results:
        checks.append((f"{results['big']['rows_seen']}-row sync <= 25 requests",
                       results["big"]["emulator_requests"] <= 25
                       and results["big"]["requests"] <= 25))
    print("; ".join(f"{what}: {'yes' if ok else 'NO'}" for what, ok in checks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--big", action="store_true",
                        help="also a first sync of --big-rows rows (its requests)")
    parser.add_argument("--big-rows", type=int, default=10_000)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pixelmerge-sheets-") as tmp:
        results = run(Path(tmp), args)
    report(results, args)
    assert results["again"]["rendered"] == results["edited"], results["again"]
    assert results["changed"], "the re-sync changed other rows' URLs than the edited ones"


if __name__ == "__main__":
    main()
