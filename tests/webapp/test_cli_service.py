"""The service commands of SPEC 11 as an operator runs them: ``pixelmerge db upgrade``,
``admin create-user``, ``admin create-api-key`` and ``serve`` (a real gunicorn process),
configured by environment variables only."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import psycopg
import pytest
import requests
import services  # noqa: I001  (tests/ is on the path)
from click.testing import CliRunner

from webapp.cli import main

PIXELMERGE = Path(sys.executable).parent / "pixelmerge"
PASSWORD = "correct horse battery"
TABLES = {"users", "workspaces", "memberships", "api_keys", "templates", "template_versions",
          "assets", "renders", "usage", "alembic_version"}
PRICE_TEMPLATE = {
    "name": "Price tag", "width": 120, "height": 60, "background": "#ffffff",
    "variables": {"price": {"type": "text", "sample": "9"}},
    "layers": [{"name": "price", "type": "text", "x": 4, "y": 4, "width": 112, "height": 52,
                "text": "{{ price }}", "size": 24, "color": "#000000"}],
}
SETTINGS = ("DATABASE_URL", "REDIS_URL", "STORAGE_URL", "PUBLIC_URL", "SECRET_KEY",
            "ENCRYPTION_KEY")


def environment(tmp_path: Path, database_url: str) -> dict[str, str]:
    """The process environment of an install in ``tmp_path``: nothing of ours inherited."""
    env = {name: value for name, value in os.environ.items()
           if name not in SETTINGS and not name.startswith("PIXELMERGE_")}
    return {**env, "PIXELMERGE_DATA": str(tmp_path / "data"), "DATABASE_URL": database_url}


def run(env: dict[str, str], *args: str, input: str | None = None):
    """``pixelmerge ARGS`` in this process (quick), with ``env`` as its environment."""
    overrides = {name: env.get(name) for name in set(env) | set(os.environ)}
    return CliRunner().invoke(main, list(args), env=overrides, input=input,
                              catch_exceptions=False)


def run_process(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(PIXELMERGE), *args], env=env, capture_output=True, text=True,
                          timeout=120)


def sqlite_tables(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as connection:
        return {row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}


@pytest.fixture
def sqlite_env(tmp_path) -> dict[str, str]:
    return environment(tmp_path, f"sqlite:///{tmp_path / 'pixelmerge.db'}")


@pytest.fixture
def upgraded(sqlite_env) -> dict[str, str]:
    result = run(sqlite_env, "db", "upgrade")
    assert result.exit_code == 0, result.output
    return sqlite_env


@pytest.fixture
def user(upgraded) -> dict[str, str]:
    result = run(upgraded, "admin", "create-user", "Ada@Example.com", "--password", PASSWORD)
    assert result.exit_code == 0, result.output
    return upgraded


@pytest.fixture
def fresh_postgres(postgres_url) -> Iterator[str]:
    with services.database(postgres_url, prefix="c") as url:
        yield url


# --- db upgrade ---------------------------------------------------------------------------------

def test_db_upgrade_creates_the_schema_on_a_fresh_sqlite_file(sqlite_env, tmp_path):
    result = run_process(sqlite_env, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (f"database is up to date "
                                     f"(sqlite:///{tmp_path / 'pixelmerge.db'})")
    assert sqlite_tables(tmp_path / "pixelmerge.db") >= TABLES
    # the secrets nobody set are made once, private, in the data folder
    for name in ("secret_key", "encryption_key"):
        assert (tmp_path / "data" / name).stat().st_mode & 0o077 == 0
    again = run(sqlite_env, "db", "upgrade")  # idempotent
    assert again.exit_code == 0, again.output


def test_db_upgrade_creates_the_schema_on_a_fresh_postgres_database(tmp_path, fresh_postgres):
    env = environment(tmp_path, fresh_postgres)
    result = run_process(env, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("database is up to date (postgresql://")
    with psycopg.connect(fresh_postgres) as conn:
        tables = {row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert tables >= TABLES


def test_db_upgrade_hides_the_password_of_the_database_url():
    from webapp.cli_service import _safe_url

    assert _safe_url("postgresql://pm:s3cret@db:5432/pm") == "postgresql://pm:***@db:5432/pm"
    assert _safe_url("sqlite:////var/pm.db") == "sqlite:////var/pm.db"


# --- admin create-user --------------------------------------------------------------------------

def test_create_user(upgraded, tmp_path):
    result = run(upgraded, "admin", "create-user", "Ada@Example.com", "--password", PASSWORD,
                 "--workspace", "Acme")
    assert result.exit_code == 0, result.output
    assert result.stdout == "created ada@example.com in workspace 1 (Acme)\n"
    with closing(sqlite3.connect(tmp_path / "pixelmerge.db")) as connection:
        email, password_hash = connection.execute(
            "SELECT email, password_hash FROM users").fetchone()
    assert email == "ada@example.com"
    assert PASSWORD not in password_hash


def test_create_user_prompts_for_the_password_twice(upgraded):
    result = run(upgraded, "admin", "create-user", "bob@example.com",
                 input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output  # hidden input
    assert "created bob@example.com in workspace 1 (bob's workspace)" in result.stdout


@pytest.mark.parametrize(("email", "password", "message"), [
    ("not-an-email", PASSWORD, "error: 'not-an-email' is not an email address"),
    ("a b@example.com", PASSWORD, "error: 'a b@example.com' is not an email address"),
    ("eve@example.com", "short", "error: the password needs at least 8 characters"),
    ("ADA@example.com ", PASSWORD, "error: a user ada@example.com exists already"),
])
def test_create_user_errors_exit_2_with_a_message(user, email, password, message):
    result = run(user, "admin", "create-user", email, "--password", password)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == message
    assert result.stdout == ""
    assert "Traceback" not in result.output


# --- admin create-api-key -----------------------------------------------------------------------

def test_create_api_key_prints_the_key_alone_on_the_last_line(user):
    result = run(user, "admin", "create-api-key", "ada@example.com", "--scopes",
                 "render,templates:read", "--expires", "30d", "--name", "zapier")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    token = lines[-1]
    assert token.startswith("pm_") and token == token.strip() and " " not in token
    assert len(lines) == 2
    assert lines[0].startswith(f"API key {token[:10]}… for ada@example.com, scopes: "
                               f"render templates:read, expires ")
    assert token not in lines[0]


@pytest.mark.parametrize(("args", "message"), [
    (["--scopes", "render,bogus"], "error: unknown scope 'bogus' (scopes: render, "
                                   "templates:read, templates:write, sources, admin)"),
    (["--scopes", "render,Admin"], "error: unknown scope 'Admin'"),
])
def test_create_api_key_refuses_unknown_scopes(user, args, message):
    result = run(user, "admin", "create-api-key", "ada@example.com", *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().startswith(message)
    assert result.stdout == ""


def test_create_api_key_errors(user):
    result = run(user, "admin", "create-api-key", "nobody@example.com")
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: no user nobody@example.com"
    for expires, message in [("soon", "use 30d, 12h, 2w or a date like 2027-01-31"),
                             ("99999999w", "use 30d, 12h, 2w or a date like 2027-01-31"),
                             ("2020-01-31", "2020-01-31 is not in the future"),
                             ("0d", "0d is not in the future")]:
        result = run(user, "admin", "create-api-key", "ada@example.com", "--expires", expires)
        assert result.exit_code == 2, (expires, result.output)
        assert message in result.stderr, (expires, result.stderr)
        assert "Traceback" not in result.output
        assert result.stdout == ""


def test_admin_commands_before_db_upgrade_say_what_to_do(sqlite_env, tmp_path):
    for args in (["create-user", "ada@example.com", "--password", PASSWORD],
                 ["create-api-key", "ada@example.com"]):
        result = run(sqlite_env, "admin", *args)
        assert result.exit_code == 2, result.output
        assert result.stderr.strip() == (
            f"error: the database sqlite:///{tmp_path / 'pixelmerge.db'} cannot be used (no "
            f"such table: users); a new database needs 'pixelmerge db upgrade' first")


# --- serve --------------------------------------------------------------------------------------

class Served:
    """``pixelmerge serve`` as a real gunicorn process on a loopback port."""

    def __init__(self, env: dict[str, str], log: Path):
        self.port = services.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [str(PIXELMERGE), "serve", "--port", str(self.port), "--workers", "1",
                 "--threads", "2"], env={**env, "PUBLIC_URL": self.url}, stdout=out,
                stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise AssertionError(f"no answer within {timeout} s:\n{self.log.read_text()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def test_serve_answers_health_and_renders_with_a_key_from_the_cli(user, tmp_path):
    created = run(user, "admin", "create-api-key", "ada@example.com", "--scopes",
                  "render,templates:write,templates:read", "--expires", "30d")
    assert created.exit_code == 0, created.output
    token = created.stdout.splitlines()[-1]
    server = Served(user, tmp_path / "serve.log")
    try:
        server.wait_ready()
        assert requests.get(server.url + "/healthz", timeout=10).json() == {"status": "ok"}
        headers = {"Authorization": f"Bearer {token}"}
        me = requests.get(server.url + "/api/v1/me", headers=headers, timeout=10)
        assert me.status_code == 200, me.text
        assert me.json()["user"]["email"] == "ada@example.com"
        assert me.json()["key"]["scopes"] == ["render", "templates:write", "templates:read"]
        assert me.json()["key"]["expires_at"] is not None
        template = requests.post(server.url + "/api/v1/templates", json=PRICE_TEMPLATE,
                                 headers=headers, timeout=30)
        assert template.status_code == 201, template.text
        render = requests.post(server.url + "/api/v1/renders", headers=headers, timeout=60,
                               json={"template": template.json()["id"],
                                     "variables": {"price": "12"}})
        assert render.status_code == 201, render.text
        picture = requests.get(render.json()["url"], timeout=10)
        assert picture.status_code == 200
        assert picture.content.startswith(b"\x89PNG")
        unknown = requests.get(server.url + "/api/v1/me", timeout=10,
                               headers={"Authorization": "Bearer pm_nope"})
        assert unknown.status_code == 401
    finally:
        code = server.stop()
    log = server.log.read_text()
    assert code == 0, log
    assert "Traceback" not in log
    assert "Shutting down: Master" in log
