"""Pixelmerge's web application: ``create_app`` builds a configured Flask app.

Nothing connects, reads files or imports plugins at import time; ``create_app`` reads the
configuration (defaults, environment, ``test_config``) and wires the extensions."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    from . import config, errors, metrics, ratelimit, ui
    from .crypto import new_key
    from .extensions import db, limiter

    app = Flask(__name__)
    app.config.from_mapping(config.defaults(config.data_dir(os.environ)))
    app.config.update(config.from_environment(os.environ, app.config))
    app.config.update(test_config or {})
    config.ensure_secret(app.config, "SECRET_KEY", lambda: os.urandom(32).hex())
    config.ensure_secret(app.config, "ENCRYPTION_KEY", new_key)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_uri(app.config["DATABASE_URL"])
    # a networked database may drop idle connections: check each one out with a ping (a local
    # SQLite file needs no such round trip on every request)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        "pool_pre_ping": not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")}
    app.config["RATELIMIT_STORAGE_URI"] = ratelimit.storage_uri(app.config["REDIS_URL"])
    app.config["RATELIMIT_HEADERS_ENABLED"] = True
    # Redis down must not take the API down: count in memory until it is back
    app.config["RATELIMIT_IN_MEMORY_FALLBACK_ENABLED"] = True
    app.json.sort_keys = False

    db.init_app(app)
    limiter.init_app(app)
    ratelimit.without_middleware(app, limiter)
    app.extensions["storage"] = _storage(app)
    errors.register(app)
    metrics.init_app(app)
    _register_blueprints(app)
    ui.init_app(app)  # the web UI: sign-in sessions, CSRF on its forms, its pages
    return app


def database_uri(url: str) -> str:
    """``postgres://`` and ``postgresql://`` use psycopg 3, the driver we ship."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _storage(app: Flask):
    from .storage import storage_from_url

    return storage_from_url(app.config["STORAGE_URL"], endpoint_url=app.config["S3_ENDPOINT_URL"])


def _register_blueprints(app: Flask) -> None:
    from . import api, experiments, inbound, live, public

    app.register_blueprint(api.bp)
    app.register_blueprint(public.bp)
    app.register_blueprint(inbound.bp)
    app.register_blueprint(live.bp)
    app.register_blueprint(experiments.bp)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    """SQLite: write-ahead log (readers never wait for the writer), foreign keys on, and a busy
    timeout so concurrent writers queue instead of failing."""
    if type(dbapi_connection).__module__ != "sqlite3":
        return
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                   "busy_timeout=10000"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()
