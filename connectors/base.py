"""The connector contract: where rows come from and where outputs go back.

A connector is a class with a stable ``type`` key, a human ``name``, ``enabled()``,
``configuration_schema()`` (JSON Schema; fields marked ``"secret": true`` are stored encrypted
and never shown again), ``test_connection()`` and its read/write methods. It returns rows of
plain strings and never knows how pictures are drawn; the web app gives it what it needs (API
URLs, credentials, file storage) as a :class:`Context`, never through globals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar


class SourceError(Exception):
    """A source cannot be read or written: says what to do about it. ``reconnect`` marks
    credentials the user must renew; ``transient`` errors are worth trying again later."""

    def __init__(self, code: str, message: str, *, status: int = 422, transient: bool = False,
                 reconnect: bool = False, details: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.transient = transient
        self.reconnect = reconnect
        self.details = dict(details or {})


@dataclass
class Row:
    """One row of a sheet: its number as the sheet shows it (1-based) and its cells."""

    number: int
    cells: list[str]

    def get(self, column: int | None) -> str:
        if column is None or column >= len(self.cells):
            return ""
        return self.cells[column]

    @property
    def blank(self) -> bool:
        return not any(cell.strip() for cell in self.cells)


@dataclass
class Table:
    """What a read returns: the header row's cells (as written, untrimmed) and the rows below
    it, blank rows included so that row numbers stay true."""

    header: list[str]
    rows: list[Row]
    header_row: int = 1
    width: int = 0  # columns in use anywhere (header or data): new columns go after these
    columns_available: int | None = None  # the grid's width, where the source has one
    title: str = ""
    worksheet: str | None = None  # the tab read, where the source has tabs

    def __post_init__(self) -> None:
        used = max([len(self.header), *(len(r.cells) for r in self.rows)], default=0)
        self.width = max(self.width, used)


@dataclass(frozen=True)
class Cell:
    """A value to write at (sheet row number, 0-based column). ``formula`` values are entered
    as a user would type them (``=IMAGE(…)``); all others are written as plain text."""

    row: int
    column: int
    value: str
    formula: bool = False


@dataclass
class Context:
    """What the web app lends a connector: configuration and ways to reach credentials and
    files, so that connectors read no globals."""

    settings: Mapping[str, Any] = field(default_factory=dict)
    oauth_session: Callable[[int | None], Any] | None = None  # account id -> requests session
    files: Any = None  # a storage with get/put, for uploaded sources


class Connector:
    """Base class; subclasses set ``type``, ``name`` and override the methods they support."""

    type: ClassVar[str]
    name: ClassVar[str]
    writable: ClassVar[bool] = False

    def __init__(self, config: Mapping[str, Any], secrets: Mapping[str, Any],
                 context: Context):
        self.config = dict(config)
        self.secrets = dict(secrets)
        self.context = context
        self.known_worksheet: str | None = None  # a tab found by an earlier read

    @property
    def requests(self) -> int:
        """Calls made to the outside service so far, for run logs."""
        return 0

    @classmethod
    def enabled(cls, settings: Mapping[str, Any]) -> bool:
        return True

    @classmethod
    def configuration_schema(cls, settings: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def describe(cls, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Extra facts for the UI (e.g. the address to share a sheet with)."""
        return {}

    def test_connection(self) -> dict[str, Any]:
        table = self.read()
        return {"ok": True, "title": table.title, "columns": [h for h in table.header if h],
                "rows": sum(1 for r in table.rows if not r.blank)}

    def read(self) -> Table:
        raise NotImplementedError

    def reread(self) -> Table:
        """The rows again, after a first :meth:`read` (a source may skip what it knows)."""
        return self.read()

    def read_rows(self, numbers: list[int]) -> Table:
        """The header and just these rows (an inbound webhook's row); default: a full read."""
        table = self.read()
        wanted = set(numbers)
        table.rows = [r for r in table.rows if r.number in wanted]
        return table

    def add_columns(self, table: Table, headers: list[str]) -> dict[str, int]:
        """Make room for new header cells after the last used column; returns their columns.
        The header cells themselves are written with the next :meth:`write`."""
        raise SourceError("read_only", f"{self.name} sources cannot be written to", status=400)

    def write(self, cells: list[Cell]) -> None:
        raise SourceError("read_only", f"{self.name} sources cannot be written to", status=400)


def secret_fields(schema: Mapping[str, Any]) -> set[str]:
    return {name for name, prop in schema.get("properties", {}).items() if prop.get("secret")}
