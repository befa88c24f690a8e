"""Running Alembic from the app (``pixelmerge db upgrade``, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from flask import Flask

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(connection=None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("file_template",
                           "%%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d_%%(slug)s")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(app: Flask, revision: str = "head") -> None:
    from .extensions import db

    with app.app_context(), db.engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)
