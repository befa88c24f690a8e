"""Spreadsheets and their sheets: a grid of ``row_count`` x ``column_count`` cells, stored
sparsely as ragged rows; who each spreadsheet is shared with. No locking here: the store holds
one lock around every operation."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from typing import Any

from . import cells
from .cells import Cell

ID_ALPHABET = string.ascii_letters + string.digits + "-_"
ROLES = ("reader", "writer")
ANYONE = "anyone"


def new_spreadsheet_id() -> str:
    """44 characters of ``[A-Za-z0-9_-]`` starting with 1, like Google's."""
    return "1" + "".join(secrets.choice(ID_ALPHABET) for _ in range(43))


def new_sheet_id() -> int:
    return secrets.randbelow(2_000_000_000 - 1) + 1


@dataclass
class Sheet:
    sheet_id: int
    title: str
    row_count: int = 1000
    column_count: int = 26
    grid_extra: dict[str, Any] = field(default_factory=dict)  # frozenRowCount and the like
    rows: list[list[Cell | None]] = field(default_factory=list)

    def properties(self, index: int) -> dict[str, Any]:
        grid = {"rowCount": self.row_count, "columnCount": self.column_count,
                **self.grid_extra}
        return {"sheetId": self.sheet_id, "title": self.title, "index": index,
                "sheetType": "GRID", "gridProperties": grid}

    def cell(self, row: int, col: int) -> Cell | None:
        if row < len(self.rows) and col < len(self.rows[row]):
            return self.rows[row][col]
        return None

    def put(self, row: int, col: int, cell: Cell | None) -> None:
        if cell is not None and cell.is_empty():
            cell = None
        if cell is None and self.cell(row, col) is None:
            return
        while len(self.rows) <= row:
            self.rows.append([])
        line = self.rows[row]
        line.extend([None] * (col + 1 - len(line)))
        line[col] = cell

    def block(self, start_row: int, end_row: int, start_col: int,
              end_col: int) -> list[list[Cell | None]]:
        return [[self.cell(r, c) for c in range(start_col, end_col)]
                for r in range(start_row, min(end_row, len(self.rows)))]

    def data_height(self) -> int:
        """Rows up to the last one holding a cell."""
        for index in range(len(self.rows) - 1, -1, -1):
            if any(cell is not None for cell in self.rows[index]):
                return index + 1
        return 0

    def row_is_blank(self, row: int, start_col: int, end_col: int) -> bool:
        line = self.rows[row] if row < len(self.rows) else []
        return all(cell is None for cell in line[start_col:end_col])

    def insert_rows(self, start: int, count: int) -> None:
        if start < len(self.rows):
            self.rows[start:start] = [[] for _ in range(count)]
        self.row_count += count

    def insert_columns(self, start: int, count: int) -> None:
        for line in self.rows:
            if start < len(line):
                line[start:start] = [None] * count
        self.column_count += count

    def delete_rows(self, start: int, end: int) -> None:
        del self.rows[start:end]
        self.row_count -= end - start

    def delete_columns(self, start: int, end: int) -> None:
        for line in self.rows:
            del line[start:end]
        self.column_count -= end - start

    def resize(self, rows: int | None = None, columns: int | None = None) -> None:
        if rows is not None:
            del self.rows[rows:]
            self.row_count = rows
        if columns is not None:
            for line in self.rows:
                del line[columns:]
            self.column_count = columns

    def sort(self, start_row: int, end_row: int, start_col: int, end_col: int,
             specs: list[tuple[int, bool]]) -> None:
        """Sort the rows of the range by ``(column index in the sheet, descending)``."""
        end_row = min(end_row, max(len(self.rows), start_row))
        block = self.block(start_row, end_row, start_col, end_col)
        relative = [(column - start_col, descending) for column, descending in specs]
        for offset, line in enumerate(sorted(block, key=cells.row_sort_key(relative))):
            for col, cell in enumerate(line):
                self.put(start_row + offset, start_col + col, cell)

    def to_json(self) -> dict[str, Any]:
        return {"sheetId": self.sheet_id, "title": self.title, "rowCount": self.row_count,
                "columnCount": self.column_count, "gridExtra": self.grid_extra,
                "rows": [[cells.to_json(cell) for cell in line] for line in self.rows]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Sheet:
        return cls(data["sheetId"], data["title"], data["rowCount"], data["columnCount"],
                   data.get("gridExtra", {}),
                   [[cells.from_json(cell) for cell in line] for line in data["rows"]])


@dataclass
class Spreadsheet:
    id: str
    title: str
    sheets: list[Sheet]
    shared_with: dict[str, str] = field(default_factory=dict)  # email or "anyone" -> role
    locale: str = "en_US"
    time_zone: str = "Etc/GMT"

    def titles(self) -> list[str]:
        return [sheet.title for sheet in self.sheets]

    def sheet_titled(self, title: str | None) -> Sheet:
        """The sheet (``None``: the first one); the title was resolved by A1 parsing."""
        if title is None:
            return self.sheets[0]
        return next(sheet for sheet in self.sheets if sheet.title == title)

    def sheet_by_id(self, sheet_id: Any) -> Sheet | None:
        return next((sheet for sheet in self.sheets if sheet.sheet_id == sheet_id), None)

    def has_title(self, title: str, *, other_than: Sheet | None = None) -> bool:
        return any(sheet.title.lower() == title.lower() and sheet is not other_than
                   for sheet in self.sheets)

    def role(self, principal: str | None) -> str | None:
        """``writer``, ``reader`` or ``None`` for someone it is not shared with."""
        roles = [self.shared_with.get(key) for key in (principal, ANYONE) if key]
        if "writer" in roles:
            return "writer"
        return "reader" if "reader" in roles else None

    def metadata(self, base_url: str) -> dict[str, Any]:
        return {"spreadsheetId": self.id,
                "properties": {"title": self.title, "locale": self.locale,
                               "autoRecalc": "ON_CHANGE", "timeZone": self.time_zone},
                "sheets": [{"properties": sheet.properties(index)}
                           for index, sheet in enumerate(self.sheets)],
                "spreadsheetUrl": f"{base_url}/spreadsheets/d/{self.id}/edit"}

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "sharedWith": self.shared_with,
                "locale": self.locale, "timeZone": self.time_zone,
                "sheets": [sheet.to_json() for sheet in self.sheets]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Spreadsheet:
        return cls(data["id"], data["title"], [Sheet.from_json(s) for s in data["sheets"]],
                   data.get("sharedWith", {}), data.get("locale", "en_US"),
                   data.get("timeZone", "Etc/GMT"))


def new_sheet(title: str, values: list[list[Any]] | None = None, *, rows: int = 1000,
              columns: int = 26, sheet_id: int | None = None) -> Sheet:
    """A sheet seeded from rows of admin-API cell forms; the grid grows to fit them."""
    values = values or []
    sheet = Sheet(sheet_id or new_sheet_id(), title, max(rows, len(values)),
                  max([columns, *(len(line) for line in values)]))
    for r, line in enumerate(values):
        for c, value in enumerate(line):
            sheet.put(r, c, cells.seed(value))
    return sheet
