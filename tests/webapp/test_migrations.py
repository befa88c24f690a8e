"""Migrations (STYLE 11): dated, named revisions, exactly one head, no revision imports the live
models, and after ``upgrade`` the database matches the models on SQLite and PostgreSQL."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import services
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

import webapp.models  # noqa: F401  (every table on the metadata)
from webapp import create_app, database_uri
from webapp.extensions import db
from webapp.migrate import MIGRATIONS, alembic_config, upgrade

VERSIONS = MIGRATIONS / "versions"
FILE_NAME = re.compile(r"(?P<date>\d{4}_\d{2}_\d{2})_\d{4}_(?P<slug>[a-z][a-z0-9_]{2,})\.py")
ENCRYPTION_KEY = "u8LkYpS0jJdVXb9YbJ8yX4o9f0Tq3Jc6nY2kW3hQ1sE="


def revision_files() -> list[Path]:
    return sorted(VERSIONS.glob("*.py"))


def test_there_are_revisions_and_no_strays():
    assert revision_files()
    assert not [p for p in VERSIONS.iterdir() if p.is_file() and p.suffix not in (".py",)]


def test_exactly_one_head_and_one_base():
    scripts = ScriptDirectory.from_config(alembic_config())
    assert len(scripts.get_heads()) == 1, scripts.get_heads()
    assert len(scripts.get_bases()) == 1, scripts.get_bases()
    revisions = list(scripts.walk_revisions())
    assert len(revisions) == len(revision_files())  # every file is on the one line


@pytest.mark.parametrize("path", revision_files(), ids=lambda p: p.name)
def test_revision_files_are_dated_and_named(path: Path):
    match = FILE_NAME.fullmatch(path.name)
    assert match, f"{path.name}: want YYYY_MM_DD_HHMM_what_it_does.py"
    assert not re.fullmatch(r"[0-9a-f_]+", match["slug"]), "the name says what it does"
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc and doc.splitlines()[0].strip(), f"{path.name}: no summary line"
    assert f"Create Date: {match['date'].replace('_', '-')}" in doc


@pytest.mark.parametrize("path", revision_files(), ids=lambda p: p.name)
def test_revisions_import_no_webapp_code(path: Path):
    """A revision is frozen in time; the models change under it."""
    imported = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            imported.append("." * node.level + (node.module or ""))
    assert not [name for name in imported if name.startswith(("webapp", "."))], imported
    assert set(imported) <= {"alembic", "sqlalchemy", "__future__"} | {
        name for name in imported if name.startswith(("sqlalchemy.", "alembic."))}, imported


def test_new_revisions_get_dated_named_files():
    template = alembic_config().get_main_option("file_template")
    name = template % {"year": 2027, "month": 1, "day": 2, "hour": 3, "minute": 4,
                       "slug": "add_hooks", "rev": "abc123"} + ".py"
    assert FILE_NAME.fullmatch(name), name


# --- models and migrations agree ----------------------------------------------------------------

@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database(request, tmp_path) -> Iterator[str]:
    """An empty database of each kind (not the suite's migrated template)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    with services.database(request.getfixturevalue("postgres_url"), prefix="m") as url:
        yield url


@pytest.fixture
def migrated_app(fresh_database, tmp_path):
    app = create_app({"TESTING": True, "DATA_DIR": str(tmp_path), "SECRET_KEY": "test",
                      "ENCRYPTION_KEY": ENCRYPTION_KEY, "DATABASE_URL": fresh_database,
                      "STORAGE_URL": f"file://{tmp_path / 'storage'}"})
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def differences(url: str) -> list:
    engine = create_engine(database_uri(url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, db.metadata)
    finally:
        engine.dispose()


def test_models_and_migrations_agree(migrated_app, fresh_database):
    upgrade(migrated_app)
    assert differences(fresh_database) == []
    with migrated_app.app_context():
        tables = set(inspect(db.engine).get_table_names())
    assert tables == set(db.metadata.tables) | {"alembic_version"}


def test_downgrade_to_base_and_upgrade_again(migrated_app, fresh_database):
    upgrade(migrated_app)
    with migrated_app.app_context(), db.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    with migrated_app.app_context():
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    upgrade(migrated_app)
    assert differences(fresh_database) == []


def test_upgrade_twice_is_a_no_op(migrated_app, fresh_database):
    upgrade(migrated_app)
    upgrade(migrated_app)
    scripts = ScriptDirectory.from_config(alembic_config())
    engine = create_engine(database_uri(fresh_database))
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_heads()
    finally:
        engine.dispose()
    assert current == tuple(scripts.get_heads())
