"""``spreadsheets.values``: get, update, append and clear over a :class:`Spreadsheet`, with
Google's grid limits, trimming and response shapes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import cells
from .a1 import A1Error, A1Range, column_letters, format_range, parse_range
from .errors import GoogleError
from .workbook import Sheet, Spreadsheet

DIMENSIONS = ("ROWS", "COLUMNS")


@dataclass(frozen=True)
class Target:
    """A parsed range on its sheet."""

    sheet: Sheet
    a1: A1Range
    text: str

    @property
    def start(self) -> tuple[int, int]:
        return self.a1.start_row, self.a1.start_col

    def clamped(self) -> tuple[int, int, int, int]:
        """(start row, end row, start column, end column) inside the grid."""
        sheet, a1 = self.sheet, self.a1
        end_row = sheet.row_count if a1.end_row is None else min(a1.end_row, sheet.row_count)
        end_col = sheet.column_count if a1.end_col is None else \
            min(a1.end_col, sheet.column_count)
        return a1.start_row, max(end_row, a1.start_row), a1.start_col, \
            max(end_col, a1.start_col)


def target(book: Spreadsheet, text: str) -> Target:
    try:
        a1 = parse_range(text, book.titles())
    except A1Error as exc:
        raise GoogleError(400, str(exc)) from exc
    return Target(book.sheet_titled(a1.sheet), a1, text)


def check_option(name: str, value: str | None, allowed: tuple[str, ...],
                 default: str | None = None) -> str:
    """A query or body enum, with Google's messages for a missing or unknown one."""
    if value is None:
        if default is None:
            raise GoogleError(400, f"'{name}' is required but not specified")
        return default
    if value not in allowed:
        raise GoogleError(400, f"Invalid value at '{_snake(name)}' (TYPE_ENUM), \"{value}\"")
    return value


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


# reading


def get(book: Spreadsheet, text: str, *, render: str = "FORMATTED_VALUE",
        major: str = "ROWS") -> dict[str, Any]:
    found = target(book, text)
    start_row, end_row, start_col, end_col = found.clamped()
    grid = [[cells.render(cell, render) for cell in line]
            for line in found.sheet.block(start_row, end_row, start_col, end_col)]
    if major == "COLUMNS":
        grid = _transpose(grid)
    result: dict[str, Any] = {
        "range": format_range(found.sheet.title, start_row, start_col, end_row, end_col),
        "majorDimension": major}
    values = _trim(grid)
    if values:
        result["values"] = values
    return result


def _transpose(grid: list[list[Any]]) -> list[list[Any]]:
    width = max((len(line) for line in grid), default=0)
    return [[line[c] if c < len(line) else "" for line in grid] for c in range(width)]


def _trim(grid: list[list[Any]]) -> list[list[Any]]:
    """Trailing empty cells of each line and trailing empty lines go, as in Google's answers."""
    lines = []
    for line in grid:
        end = len(line)
        while end and line[end - 1] == "":
            end -= 1
        lines.append(line[:end])
    while lines and not lines[-1]:
        lines.pop()
    return lines


# writing


Plan = tuple[Target, list[list[Any]]]


def prepare(book: Spreadsheet, text: str, values: Any, *, option: str,
            major: str = "ROWS") -> Plan:
    """Check a write without doing it: bounded by a multi-cell range, by the grid always."""
    found = target(book, text)
    grid = _input_grid(values, option, major)
    height, width = len(grid), max((len(line) for line in grid), default=0)
    _check_within(found, height, width)
    _check_grid(found.sheet, *found.start, height, width)
    return found, grid


def commit(book: Spreadsheet, found: Target, grid: list[list[Any]]) -> dict[str, Any]:
    return {"spreadsheetId": book.id, **_write(found.sheet, *found.start, grid)}


def update(book: Spreadsheet, text: str, values: Any, *, option: str,
           major: str = "ROWS") -> dict[str, Any]:
    return commit(book, *prepare(book, text, values, option=option, major=major))


def batch_totals(sid: str, responses: list[dict[str, Any]], plans: list[Plan]) -> dict[str, Any]:
    """``values:batchUpdate``'s answer: totals over distinct rows, columns and sheets."""
    rows, columns, sheets, count = set(), set(), set(), 0
    for found, grid in plans:
        sheet_id, (start_row, start_col) = found.sheet.sheet_id, found.start
        for r, line in enumerate(grid):
            for c, cell in enumerate(line):
                if cell is not cells.SKIP:
                    rows.add((sheet_id, start_row + r))
                    columns.add((sheet_id, start_col + c))
                    sheets.add(sheet_id)
                    count += 1
    result: dict[str, Any] = {"spreadsheetId": sid}
    if count:
        result.update(totalUpdatedRows=len(rows), totalUpdatedColumns=len(columns),
                      totalUpdatedCells=count, totalUpdatedSheets=len(sheets))
    if responses:
        result["responses"] = responses
    return result


def _input_grid(values: Any, option: str, major: str) -> list[list[Any]]:
    if values is None:
        return []
    if not isinstance(values, list) or not all(isinstance(line, list) for line in values):
        raise GoogleError(400, "Invalid values: a list of lists is expected")
    grid = []
    for r, line in enumerate(values):
        row = []
        for c, value in enumerate(line):
            try:
                row.append(cells.from_input(value, option))
            except cells.CellError as exc:
                raise GoogleError(400, f"Invalid values[{r}][{c}]: {value!r}") from exc
        grid.append(row)
    if major == "COLUMNS":
        width = max((len(line) for line in grid), default=0)
        grid = [[line[c] if c < len(line) else cells.SKIP for line in grid]
                for c in range(width)]
    return grid


def _check_within(found: Target, height: int, width: int) -> None:
    a1 = found.a1
    if a1.single:
        return
    start_row, start_col = found.start
    shown = _range_text(found)
    if a1.end_row is not None and start_row + height > a1.end_row:
        raise GoogleError(400, f"Requested writing within range [{shown}], but tried writing "
                               f"to row [{start_row + height}]")
    if a1.end_col is not None and start_col + width > a1.end_col:
        raise GoogleError(400, f"Requested writing within range [{shown}], but tried writing "
                               f"to column [{column_letters(start_col + width - 1)}]")


def _range_text(found: Target) -> str:
    a1, sheet = found.a1, found.sheet
    end_row = sheet.row_count if a1.end_row is None else a1.end_row
    end_col = sheet.column_count if a1.end_col is None else a1.end_col
    return format_range(sheet.title, a1.start_row, a1.start_col, end_row, end_col)


def _check_grid(sheet: Sheet, start_row: int, start_col: int, height: int,
                width: int) -> None:
    if start_row + height <= sheet.row_count and start_col + width <= sheet.column_count:
        return
    shown = format_range(sheet.title, start_row, start_col, start_row + max(height, 1),
                         start_col + max(width, 1), quote_always=True)
    raise GoogleError(400, f"Range ({shown}) exceeds grid limits. Max rows: "
                           f"{sheet.row_count}, max columns: {sheet.column_count}")


def _write(sheet: Sheet, start_row: int, start_col: int,
           grid: list[list[Any]]) -> dict[str, Any]:
    rows, columns, count = set(), set(), 0
    for r, line in enumerate(grid):
        for c, cell in enumerate(line):
            if cell is cells.SKIP:
                continue
            sheet.put(start_row + r, start_col + c, cell)
            rows.add(r)
            columns.add(c)
            count += 1
    width = max((len(line) for line in grid), default=0)
    result: dict[str, Any] = {"updatedRange": format_range(
        sheet.title, start_row, start_col, start_row + max(len(grid), 1),
        start_col + max(width, 1))}
    if count:
        result.update(updatedRows=len(rows), updatedColumns=len(columns), updatedCells=count)
    return result


def updated_data(book: Spreadsheet, response: dict[str, Any], *, render: str,
                 major: str) -> dict[str, Any]:
    """``includeValuesInResponse``: the written range as it now reads."""
    return {**response, "updatedData": get(book, response["updatedRange"], render=render,
                                           major=major)}


# appending


def append(book: Spreadsheet, text: str, values: Any, *, option: str, insert: str,
           major: str = "ROWS") -> dict[str, Any]:
    """Find the table in the range and write after its last row, from its first column;
    the grid grows to fit (with INSERT_ROWS the rows below move down)."""
    found = target(book, text)
    grid = _input_grid(values, option, major)
    sheet = found.sheet
    table = _find_table(found)
    row, col = (table[1], table[2]) if table else found.start
    height, width = len(grid), max((len(line) for line in grid), default=0)
    if insert == "INSERT_ROWS" and row < sheet.row_count:
        sheet.insert_rows(row, height)
    sheet.row_count = max(sheet.row_count, row + height)
    sheet.column_count = max(sheet.column_count, col + width)
    result: dict[str, Any] = {"spreadsheetId": book.id}
    if table:
        result["tableRange"] = format_range(sheet.title, table[0], table[2], table[1],
                                            table[3])
    result["updates"] = {"spreadsheetId": book.id, **_write(sheet, row, col, grid)}
    return result


def _find_table(found: Target) -> tuple[int, int, int, int] | None:
    """(first row, end row, first column, end column) of the data the range points at.

    A range open at the bottom (``Sheet1``, ``A:C``) takes everything down to its last
    non-empty row; a bounded range or a cell takes the block of consecutive non-empty rows
    starting at its first non-empty row, which may run past the range (``A1:E1`` over a
    table appends below the table)."""
    sheet, a1 = found.sheet, found.a1
    start_col = a1.start_col
    end_col = sheet.column_count if a1.single or a1.end_col is None else a1.end_col
    height = sheet.data_height()
    bound = height if a1.end_row is None else min(a1.end_row, height)
    filled = [r for r in range(a1.start_row, bound)
              if not sheet.row_is_blank(r, start_col, end_col)]
    if not filled:
        return None
    first, last = filled[0], filled[-1] + 1
    if a1.end_row is not None:
        last = first + 1
        while last < height and not sheet.row_is_blank(last, start_col, end_col):
            last += 1
    used = [c for r in range(first, last) for c, cell in enumerate(sheet.rows[r])
            if cell is not None and start_col <= c < end_col]
    return first, last, min(used), max(used) + 1


# clearing


def clear(book: Spreadsheet, text: str) -> str:
    found = target(book, text)
    start_row, end_row, start_col, end_col = found.clamped()
    for row in range(start_row, min(end_row, len(found.sheet.rows))):
        for col in range(start_col, end_col):
            found.sheet.put(row, col, None)
    return format_range(found.sheet.title, start_row, start_col, end_row, end_col)
