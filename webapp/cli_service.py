"""``pixelmerge serve``, ``db upgrade`` and ``admin …``: the commands that need the web app."""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import click

EXPIRY = re.compile(r"(\d+)([dhw])")


def _app():
    from . import create_app

    return create_app()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=None, type=int,
              help="Processes (default: one per core; rendering is CPU-bound).")
@click.option("--threads", default=4, show_default=True, type=int,
              help="Threads per process (requests waiting on the database or storage).")
def serve(host: str, port: int, workers: int | None, threads: int) -> None:
    """Serve the web app under gunicorn."""
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self):
            options = {"bind": f"{host}:{port}", "workers": workers or os.cpu_count() or 1,
                       "threads": threads, "worker_class": "webapp.server.Worker",
                       "timeout": 120, "graceful_timeout": 30, "accesslog": "-",
                       "errorlog": "-", "forwarded_allow_ips": "127.0.0.1"}
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            return _app()

    Server().run()


@click.command()
@click.argument("queues", nargs=-1)
def worker(queues: tuple[str, ...]) -> None:
    """Run background jobs from QUEUES (default: all) until stopped.

    Jobs run in this process one after another (RQ's SimpleWorker), so fonts, decoded images
    and layouts stay warm from one job to the next; run one worker per core."""
    from rq import SimpleWorker

    from .queues import ALL, queue, wait_for_redis
    from .tasks import use_app

    unknown = [name for name in queues if name not in ALL]
    if unknown:
        raise click.BadParameter(f"unknown queue {unknown[0]!r} (queues: {', '.join(ALL)})")
    app = _app()
    use_app(app)
    connection = wait_for_redis(app)
    with app.app_context():
        SimpleWorker([queue(name, app) for name in queues or ALL],
                     connection=connection).work(with_scheduler=True)


@click.command()
@click.option("--every", default=15.0, show_default=True, type=float,
              help="Seconds between rounds.")
@click.option("--once", is_flag=True, help="One round, then exit.")
def scheduler(every: float, once: bool) -> None:
    """Periodic work: queue again the renders and batch chunks whose jobs were lost or whose
    workers died."""
    import time

    from .queues import wait_for_redis
    from .tasks.sweep import sweep

    app = _app()
    wait_for_redis(app)
    while True:
        with app.app_context():
            requeued = sweep()
        if requeued:
            click.echo(f"queued {requeued} jobs of unfinished renders and batches again")
        if once:
            return
        time.sleep(every)


@click.command()
def bootstrap() -> None:
    """First run: create the schema, a first account and key, and the demo templates."""
    from .demo import bootstrap as run_bootstrap

    for line in run_bootstrap(_app()):
        click.echo(line)


@click.group()
def db() -> None:
    """Database schema."""


@db.command()
def upgrade() -> None:
    """Create or upgrade the database schema to the newest revision."""
    from .migrate import upgrade as run_upgrade

    app = _app()
    run_upgrade(app)
    click.echo(f"database is up to date ({_safe_url(app.config['DATABASE_URL'])})")


def _safe_url(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]+@", r"://\1:***@", url)


@click.group()
def admin() -> None:
    """Users and API keys."""


@admin.command("create-user")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--workspace", "workspace_name", default=None, help="Workspace name.")
def create_user(email: str, password: str, workspace_name: str | None) -> None:
    """Create a user with a workspace of their own."""
    from .accounts import create_user as make_user

    app = _app()
    with app.app_context(), _account_errors(app):
        user = make_user(email, password, workspace_name)
        click.echo(f"created {user.email} in workspace {user.workspace.id} "
                   f"({user.workspace.name})")


@admin.command("create-api-key")
@click.argument("email")
@click.option("--scopes", default="render,templates:read,templates:write", show_default=True,
              help="Comma-separated: render, templates:read, templates:write, sources, admin.")
@click.option("--expires", default=None, help="30d, 12h, 2w or a date (2027-01-31).")
@click.option("--name", default="", help="A label to tell keys apart.")
def create_api_key(email: str, scopes: str, expires: str | None, name: str) -> None:
    """Create an API key; the key is printed once, alone on the last line."""
    from .accounts import issue_key

    expires_at = parse_expiry(expires)
    app = _app()
    with app.app_context(), _account_errors(app):
        key, token = issue_key(email, [s.strip() for s in scopes.split(",") if s.strip()],
                               expires_at=expires_at, name=name)
        click.echo(f"API key {key.prefix}… for {email}, scopes: {key.scopes}"
                   + (f", expires {key.expires_at:%Y-%m-%d %H:%M} UTC" if key.expires_at else ""))
        click.echo(token)


@contextmanager
def _account_errors(app) -> Iterator[None]:
    """A refused account or an unusable database ends the command with a message and exit
    status 2, not a traceback."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from .accounts import AccountError

    try:
        yield
    except AccountError as exc:
        _fail(str(exc))
    except (OperationalError, ProgrammingError) as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        _fail(f"the database {_safe_url(app.config['DATABASE_URL'])} cannot be used ({reason});"
              f" a new database needs 'pixelmerge db upgrade' first")


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def parse_expiry(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    now = dt.datetime.now(dt.UTC)
    when = _expiry(text.strip(), now)
    if when <= now:
        raise click.BadParameter(f"{text} is not in the future: the key would never work",
                                 param_hint="--expires")
    return when


def _expiry(text: str, now: dt.datetime) -> dt.datetime:
    match = EXPIRY.fullmatch(text)
    try:
        if match:
            unit = {"d": "days", "h": "hours", "w": "weeks"}[match[2]]
            return now + dt.timedelta(**{unit: int(match[1])})
        when = dt.datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        raise click.BadParameter("use 30d, 12h, 2w or a date like 2027-01-31",
                                 param_hint="--expires") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
