"""End-to-end fixtures: the app served over HTTP on loopback (SQLite, a real Redis, real
worker processes, the Sheets emulator standing in for Google) and Debian's Chromium driven by
Playwright. Never a downloaded browser: ``executable_path`` is the system's chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis as redis_client
import services  # noqa: I001  (tests/ is on the path)
from werkzeug.serving import WSGIRequestHandler, make_server

from webapp import create_app
from webapp.migrate import upgrade

CHROMIUM = os.environ.get("PIXELMERGE_CHROMIUM", "/usr/bin/chromium")
ENCRYPTION_KEY = "u8LkYpS0jJdVXb9YbJ8yX4o9f0Tq3Jc6nY2kW3hQ1sE="
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "images"


def pytest_collection_modifyitems(config, items):
    if not Path(CHROMIUM).exists():
        skip = pytest.mark.skip(reason=f"no Chromium at {CHROMIUM} (make setup installs it)")
        for item in items:
            if "e2e" in str(item.fspath):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def e2e_redis() -> Iterator[str]:
    with services.redis() as url:
        yield url


@pytest.fixture(scope="session")
def e2e_database(tmp_path_factory) -> Path:
    """A migrated SQLite file that each test copies."""
    folder = tmp_path_factory.mktemp("e2e-db")
    path = folder / "template.db"
    app = create_app(_config(folder, f"sqlite:///{path}"))
    upgrade(app)
    with app.app_context():
        from webapp.extensions import db

        with db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        db.engine.dispose()
    return path


def _config(folder: Path, database_url: str) -> dict:
    return {"TESTING": True, "DATA_DIR": str(folder), "SECRET_KEY": "e2e-secret",
            "ENCRYPTION_KEY": ENCRYPTION_KEY, "STORAGE_URL": f"file://{folder / 'storage'}",
            "OUTBOUND_ALLOWLIST": "127.0.0.1/32", "DATABASE_URL": database_url}


@dataclass
class Server:
    url: str
    app: object
    config: dict
    workers: list[subprocess.Popen] = field(default_factory=list)


@pytest.fixture
def server(tmp_path, e2e_database, e2e_redis, emulator) -> Iterator[Server]:
    """The platform as `make run` runs it: web on a loopback port and one worker process."""
    redis_client.Redis.from_url(e2e_redis).flushdb()
    shutil.copy(e2e_database, tmp_path / "pixelmerge.db")
    port = services.free_port()
    key = emulator.write_credentials(tmp_path / "service-account.json")
    config = {**_config(tmp_path, f"sqlite:///{tmp_path / 'pixelmerge.db'}"),
              "REDIS_URL": e2e_redis, "PUBLIC_URL": f"http://127.0.0.1:{port}",
              "GOOGLE_SHEETS_API_URL": emulator.url, "GOOGLE_SERVICE_ACCOUNT_FILE": str(key),
              "SHEETS_BACKOFF": 0.01, "SHEETS_RETRIES": 3}
    app = create_app(config)
    http = make_server("127.0.0.1", port, _keeping_responses(app), threaded=True,
                       request_handler=_ClosingHandler)
    thread = threading.Thread(target=http.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    running = Server(f"http://127.0.0.1:{port}", app, config)
    running.workers.append(_worker(config, tmp_path))
    yield running
    for process in running.workers:
        process.terminate()
        process.wait(timeout=20)
    http.shutdown()
    http.server_close()
    with app.app_context():
        from webapp.extensions import db

        db.session.remove()
        db.engine.dispose()


_RESPONSE = "pixelmerge.e2e.response"


def _keeping_responses(app):
    """The app, noting each response in its request's environ for ``_ClosingHandler``."""

    def wsgi(environ, start_response):
        environ[_RESPONSE] = response = app(environ, start_response)
        return response

    return wsgi


class _ClosingHandler(WSGIRequestHandler):
    """werkzeug's handler, but a response is closed when the browser drops the connection
    (a page closed mid-request). werkzeug's own cleanup first drains the dead socket, which
    raises before it closes the response, so a static file stayed open: a ResourceWarning
    when it was collected, an error in the test that happened to be tearing down."""

    def connection_dropped(self, error, environ=None):
        response = (environ or {}).pop(_RESPONSE, None)
        if hasattr(response, "close"):
            response.close()


def _worker(config: dict, tmp_path: Path) -> subprocess.Popen:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "webapp"))
    from test_async_renders import worker_env

    with open(tmp_path / "worker.log", "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "webapp.cli", "worker"],
                                env=worker_env(config), stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: the tests may run as root, where Chromium's sandbox cannot start
        chromium = playwright.chromium.launch(executable_path=CHROMIUM,
                                              args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 860},
                                  permissions=["clipboard-read", "clipboard-write"])
    context.set_default_timeout(20_000)
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture
def shoot():
    """``shoot(page, "name")`` writes docs/images/name.png when PIXELMERGE_SCREENSHOTS is set
    (``PIXELMERGE_SCREENSHOTS=1 .venv/bin/python -m pytest tests/e2e``)."""

    def take(tab, name: str) -> None:
        if os.environ.get("PIXELMERGE_SCREENSHOTS"):
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            tab.wait_for_load_state("networkidle")
            tab.wait_for_timeout(400)  # progress bars glide to their width
            tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)

    return take
