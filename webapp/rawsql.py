"""The few statements every new render runs, executed on the session's DB-API cursor.

On the path of a synchronous render, SQLAlchemy's execution layers (the session, execution
context, events and result objects) cost about five times the statement itself: 0.37 ms
against 0.07 ms for counting a render and committing on SQLite, and several times that when
the render just before has pushed the interpreter out of the processor's caches. These
statements are still written with Core, compiled once per dialect, and given the column types'
own bind processing; they run inside the session's transaction, which the caller commits or
rolls back as usual."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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

    def first(self, params: Mapping[str, Any]) -> tuple | None:
        """Run with ``params`` in the session's transaction; the first row returned, if any."""
        connection = db.session.connection()
        compiled = self._compiled.get(connection.dialect.name) or self._compile(
            connection.dialect)
        values = {name: processor(params[name]) if params[name] is not None else None
                  for name, processor in compiled.processors.items()}
        values = {**params, **values}
        cursor = connection.connection.cursor()
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
