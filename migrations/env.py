"""Alembic environment: the database comes from the app's configuration (DATABASE_URL), the
metadata from the models (only here, for autogenerate; revisions never import models)."""

from __future__ import annotations

from alembic import context

from webapp import create_app
from webapp.extensions import db

config = context.config


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    app = create_app()
    with app.app_context():
        with db.engine.connect() as connection:
            _run(connection)
            connection.commit()


def _run(connection) -> None:
    import webapp.models  # noqa: F401  registers every table on the metadata

    context.configure(connection=connection, target_metadata=db.metadata,
                      render_as_batch=connection.dialect.name == "sqlite",
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
