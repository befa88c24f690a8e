"""The few statements every new render runs, executed on a DB-API cursor.

On the path of a synchronous render, SQLAlchemy's execution layers (the session, execution
context, events and result objects) cost about five times the statement itself: 0.37 ms
against 0.07 ms for counting a render and committing on SQLite, and several times that when
the render just before has pushed the interpreter out of the processor's caches. These
statements are still written with Core, compiled once per dialect, and given the column types'
own bind processing. They run inside the session's transaction, which the caller commits or
rolls back as usual, or in a ``transaction()`` of their own on a pooled connection, without
the session at all (a synchronous render records itself that way)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement

from .extensions import db


@dataclass(frozen=True)
class _Compiled:
    sql: str
    positions: tuple[str, ...] | None  # bind names in order, for positional paramstyles
    processors: Mapping[str, Callable[[Any], Any]]


class RawStatement:
    """A Core statement run on the raw connection. ``columns`` fixes the columns of an INSERT
    (all of them are bound; None is SQL NULL, as for every other type)."""

    def __init__(self, statement: ClauseElement, columns: Sequence[str] | None = None):
        self.statement = statement
        self.columns = list(columns) if columns is not None else None
        self._compiled: dict[str, _Compiled] = {}

    def first(self, params: Mapping[str, Any],
              transaction: Transaction | None = None) -> tuple | None:
        """Run with ``params`` in ``transaction`` (default: the session's); the first row
        returned, if any."""
        if transaction is None:
            connection = db.session.connection()
            dialect, dbapi = connection.dialect, connection.connection
        else:
            dialect, dbapi = transaction.dialect, transaction.connection
        compiled = self._compiled.get(dialect.name) or self._compile(dialect)
        values = {name: processor(params[name]) if params[name] is not None else None
                  for name, processor in compiled.processors.items()}
        values = {**params, **values}
        cursor = dbapi.cursor()
        try:
            cursor.execute(compiled.sql, values if compiled.positions is None
                           else [values[name] for name in compiled.positions])
            return cursor.fetchone() if cursor.description else None
        finally:
            cursor.close()

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect, column_keys=self.columns)
        processors = {}
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                processors[name] = processor
        result = _Compiled(compiled.string,
                           tuple(compiled.positiontup) if compiled.positional else None,
                           processors)
        self._compiled[dialect.name] = result
        return result


@dataclass(frozen=True)
class Transaction:
    """A transaction on a pooled DB-API connection of its own (see ``transaction``)."""

    dialect: Dialect
    connection: Any  # the pool's proxy of the DB-API connection


@contextlib.contextmanager
def transaction() -> Iterator[Transaction | None]:
    """A transaction for ``RawStatement``s, committed when the block ends and rolled back when
    it raises: one of its own on a pooled connection, outside the ORM session — or the
    session's (``None``) when the session may hold an uncommitted write, whose locks a second
    connection of the same thread could wait for."""
    if _session_wrote():
        try:
            yield None
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
        return
    engine = db.engine
    connection = engine.raw_connection()
    try:
        yield Transaction(engine.dialect, connection)
        connection.commit()
    except BaseException:
        with contextlib.suppress(Exception):  # (a broken connection is dropped by the pool)
            connection.rollback()
        raise
    finally:
        connection.close()


def _session_wrote() -> bool:
    """Changes not flushed yet count too: a query of the session inside the block would flush
    them (autoflush) and wait for the block's own lock. On SQLite the rest is exact (the
    sqlite3 module opens a transaction before the first change, not before reads); on other
    databases any open transaction of the session counts."""
    if not db.session.registry.has():  # (no session yet: do not make one)
        return False
    session = db.session()
    if session.new or session.dirty or session.deleted:
        return True
    if not session.in_transaction():
        return False
    dbapi = session.connection().connection.dbapi_connection
    if type(dbapi).__module__ == "sqlite3":
        return bool(dbapi.in_transaction)
    return True
