"""The web app under test: a real database (SQLite and PostgreSQL), a real Redis, local
storage, and a real HTTP server on loopback."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis as redis_client
import services  # noqa: I001  (tests/ is on the path)
from apiclient import PASSWORD, Api
from werkzeug.serving import make_server

from webapp import create_app
from webapp.accounts import create_user, issue_key
from webapp.migrate import upgrade

ENCRYPTION_KEY = "u8LkYpS0jJdVXb9YbJ8yX4o9f0Tq3Jc6nY2kW3hQ1sE="  # a fixed Fernet key for tests


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with services.postgres() as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with services.redis() as url:
        yield url


def _base_config(tmp: Path) -> dict:
    return {"TESTING": True, "DATA_DIR": str(tmp), "SECRET_KEY": "test-secret",
            "ENCRYPTION_KEY": ENCRYPTION_KEY, "STORAGE_URL": f"file://{tmp / 'storage'}",
            "OUTBOUND_ALLOWLIST": "127.0.0.1/32"}


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A migrated SQLite file; each test gets a copy (migrating per test would be slow)."""
    folder = tmp_path_factory.mktemp("sqlite-template")
    path = folder / "template.db"
    app = create_app({**_base_config(folder), "DATABASE_URL": f"sqlite:///{path}"})
    upgrade(app)
    with app.app_context():
        from webapp.extensions import db

        with db.engine.connect() as conn:  # the tables must be in the file, not in its WAL
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        db.engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_template(postgres_url, tmp_path_factory) -> str:
    """A migrated database that each test's database is created from."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE pm_template")
    url = postgres_url.rsplit("/", 1)[0] + "/pm_template"
    folder = tmp_path_factory.mktemp("pg-template")
    app = create_app({**_base_config(folder), "DATABASE_URL": url})
    upgrade(app)
    with app.app_context():
        from webapp.extensions import db

        db.engine.dispose()  # CREATE DATABASE … TEMPLATE needs no one connected to it
    return "pm_template"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "pixelmerge.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    with services.database(request.getfixturevalue("postgres_url"),
                           template=request.getfixturevalue("postgres_template")) as url:
        yield url


class LiveServer:
    """The app served over real HTTP on a loopback port, in a thread."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._server = None
        self._thread = None

    def start(self, app) -> None:
        self._server = make_server("127.0.0.1", self.port, app, threaded=True)
        # a short poll interval: shutting the server down at teardown waits for one poll
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture
def live(database_url, tmp_path, redis_url) -> Iterator[LiveServer]:
    server = LiveServer(services.free_port())
    yield server
    server.stop()


@pytest.fixture
def settings() -> dict:
    """Configuration for one test: ``@pytest.mark.parametrize("settings", [{...}])``."""
    return {}


@pytest.fixture
def app_config(database_url, tmp_path, redis_url, live, settings) -> dict:
    redis_client.Redis.from_url(redis_url).flushdb()
    return {**_base_config(tmp_path), "DATABASE_URL": database_url, "REDIS_URL": redis_url,
            "PUBLIC_URL": live.url, **settings}


@pytest.fixture
def app(app_config, live):
    app = create_app(app_config)
    live.start(app)
    yield app
    with app.app_context():
        from webapp.extensions import db

        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def make_account(app):
    """``make_account(email, scopes=[...])`` -> (user id, workspace id, token)."""

    def make(email: str = "ada@example.com", scopes=("render", "templates:read",
                                                     "templates:write"), expires_at=None):
        with app.app_context():
            from webapp.accounts import AccountError, find_user

            try:
                user = find_user(email)
            except AccountError:
                user = create_user(email, PASSWORD)
            key, token = issue_key(email, list(scopes), expires_at=expires_at)
            return user.id, user.workspace.id, token

    return make


@pytest.fixture
def api(app, live, make_account) -> Api:
    _, _, token = make_account()
    return Api(live.url, token)


@pytest.fixture
def other_api(app, live, make_account) -> Api:
    """A client of another workspace: its objects must stay invisible to ``api``."""
    _, _, token = make_account("mallory@example.org")
    return Api(live.url, token)
