"""``spreadsheets:batchUpdate``: the structural requests gspread and the product send. A batch
is all or nothing, as at Google: it runs on a copy that replaces the spreadsheet only when every
request succeeded. Formatting-only requests are accepted and ignored."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from .errors import GoogleError
from .workbook import Sheet, Spreadsheet, new_sheet

IGNORED = frozenset({"repeatCell", "autoResizeDimensions", "updateDimensionProperties",
                     "updateBorders", "addConditionalFormatRule", "mergeCells", "unmergeCells",
                     "addBanding", "setBasicFilter", "clearBasicFilter"})
GRID_FIELDS = {"rowCount", "columnCount"}


def apply(book: Spreadsheet, requests: Any) -> tuple[Spreadsheet, list[dict[str, Any]]]:
    """Run ``requests`` on a copy of ``book``: (the changed copy, one reply per request)."""
    if not isinstance(requests, list) or not requests:
        raise GoogleError(400, "Must specify at least one request.")
    work, replies = copy.deepcopy(book), []
    for index, request in enumerate(requests):
        if not isinstance(request, dict) or len(request) != 1:
            raise GoogleError(400, f"Invalid requests[{index}]: exactly one kind of request "
                                   "is expected")
        kind, body = next(iter(request.items()))
        handler = HANDLERS.get(kind)
        if handler is None and kind not in IGNORED:
            raise GoogleError(400, f"Invalid JSON payload received. Unknown name \"{kind}\" "
                                   f"at 'requests[{index}]': Cannot find field.")
        where = f"requests[{index}].{kind}"
        replies.append(handler(work, body or {}, where) if handler else {})
    return work, replies


def _invalid(where: str, message: str) -> GoogleError:
    return GoogleError(400, f"Invalid {where}: {message}")


def _sheet(book: Spreadsheet, sheet_id: Any, where: str) -> Sheet:
    sheet = book.sheet_by_id(sheet_id or 0)
    if sheet is None:
        raise _invalid(where, f"No grid with id: {sheet_id or 0}")
    return sheet


def _dimension_range(book: Spreadsheet, body: dict, where: str) -> tuple[Sheet, str, int, int]:
    rng = body.get("range") or {}
    sheet = _sheet(book, rng.get("sheetId"), where)
    dimension = rng.get("dimension")
    if dimension not in ("ROWS", "COLUMNS"):
        raise _invalid(where, "dimension must be ROWS or COLUMNS")
    count = sheet.row_count if dimension == "ROWS" else sheet.column_count
    start, end = int(rng.get("startIndex", 0)), int(rng.get("endIndex", count))
    if start < 0 or end <= start:
        raise _invalid(where, "endIndex must be greater than startIndex")
    return sheet, dimension, start, end


def append_dimension(book: Spreadsheet, body: dict, where: str) -> dict:
    sheet = _sheet(book, body.get("sheetId"), where)
    length = int(body.get("length", 0))
    if length <= 0:
        raise _invalid(where, "length must be greater than 0")
    if body.get("dimension") == "COLUMNS":
        sheet.column_count += length
    elif body.get("dimension") == "ROWS":
        sheet.row_count += length
    else:
        raise _invalid(where, "dimension must be ROWS or COLUMNS")
    return {}


def insert_dimension(book: Spreadsheet, body: dict, where: str) -> dict:
    sheet, dimension, start, end = _dimension_range(book, body, where)
    count = sheet.row_count if dimension == "ROWS" else sheet.column_count
    if start > count:
        raise _invalid(where, f"startIndex {start} is out of bounds (the grid has {count})")
    if start == 0 and body.get("inheritFromBefore"):
        raise _invalid(where, "Cannot inherit properties from before the first row or column")
    insert = sheet.insert_rows if dimension == "ROWS" else sheet.insert_columns
    insert(start, end - start)
    return {}


def delete_dimension(book: Spreadsheet, body: dict, where: str) -> dict:
    sheet, dimension, start, end = _dimension_range(book, body, where)
    count = sheet.row_count if dimension == "ROWS" else sheet.column_count
    end = min(end, count)
    if start >= count:
        raise _invalid(where, f"startIndex {start} is out of bounds (the grid has {count})")
    if start == 0 and end == count:
        noun = "rows" if dimension == "ROWS" else "columns"
        raise _invalid(where, f"You can't delete all the {noun} on the sheet.")
    delete = sheet.delete_rows if dimension == "ROWS" else sheet.delete_columns
    delete(start, end)
    return {}


def _fields(mask: Any, given: dict[str, Any]) -> list[str]:
    """Field paths of an update mask (``gridProperties/rowCount`` or ``.rowCount``)."""
    if not isinstance(mask, str) or not mask:
        raise GoogleError(400, "At least one field must be updated, but 'fields' is empty.")
    if mask.strip() == "*":
        grid = [f"gridProperties.{key}" for key in given.get("gridProperties", {})]
        return [key for key in given if key not in ("gridProperties", "sheetId")] + grid
    return [part.strip().replace("/", ".") for part in mask.split(",") if part.strip()]


def update_sheet_properties(book: Spreadsheet, body: dict, where: str) -> dict:
    props = body.get("properties") or {}
    sheet = _sheet(book, props.get("sheetId"), where)
    grid = props.get("gridProperties") or {}
    for path in _fields(body.get("fields"), props):
        if path == "title":
            _rename(book, sheet, props.get("title"), where)
        elif path == "index":
            _move(book, sheet, int(props.get("index") or 0))
        elif path == "gridProperties":
            for key, value in grid.items():
                _set_grid(sheet, key, value, where)
        elif path.startswith("gridProperties."):
            key = path.split(".", 1)[1]
            _set_grid(sheet, key, grid.get(key), where)
    return {}


def _rename(book: Spreadsheet, sheet: Sheet, title: Any, where: str) -> None:
    if not isinstance(title, str) or not title:
        raise _invalid(where, "The sheet name cannot be empty.")
    if book.has_title(title, other_than=sheet):
        raise _invalid(where, f'A sheet with the name "{title}" already exists. Please enter '
                              "another name.")
    sheet.title = title


def _move(book: Spreadsheet, sheet: Sheet, index: int) -> None:
    book.sheets.remove(sheet)
    book.sheets.insert(max(0, min(index, len(book.sheets))), sheet)


def _set_grid(sheet: Sheet, key: str, value: Any, where: str) -> None:
    if key not in GRID_FIELDS:
        if value is None:
            sheet.grid_extra.pop(key, None)
        else:
            sheet.grid_extra[key] = value
        return
    if not isinstance(value, int) or value < 1:
        noun = "rows" if key == "rowCount" else "columns"
        raise _invalid(where, f"You can't delete all the {noun} on the sheet.")
    if key == "rowCount":
        sheet.resize(rows=value)
    else:
        sheet.resize(columns=value)


def add_sheet(book: Spreadsheet, body: dict, where: str) -> dict:
    props = body.get("properties") or {}
    title = props.get("title") or _free_title(book)
    if book.has_title(title):
        raise _invalid(where, f'A sheet with the name "{title}" already exists. Please enter '
                              "another name.")
    if props.get("sheetId") is not None and book.sheet_by_id(props["sheetId"]) is not None:
        raise _invalid(where, f"Sheet with id {props['sheetId']} already exists.")
    grid = props.get("gridProperties") or {}
    sheet = new_sheet(title, rows=int(grid.get("rowCount", 1000)),
                      columns=int(grid.get("columnCount", 26)), sheet_id=props.get("sheetId"))
    index = props.get("index")
    book.sheets.insert(len(book.sheets) if index is None else int(index), sheet)
    return {"addSheet": {"properties": sheet.properties(book.sheets.index(sheet))}}


def _free_title(book: Spreadsheet) -> str:
    number = len(book.sheets) + 1
    while book.has_title(f"Sheet{number}"):
        number += 1
    return f"Sheet{number}"


def delete_sheet(book: Spreadsheet, body: dict, where: str) -> dict:
    sheet = _sheet(book, body.get("sheetId"), where)
    if len(book.sheets) == 1:
        raise _invalid(where, "You can't remove all the sheets in a document.")
    book.sheets.remove(sheet)
    return {}


def sort_range(book: Spreadsheet, body: dict, where: str) -> dict:
    rng = body.get("range") or {}
    sheet = _sheet(book, rng.get("sheetId"), where)
    start_row, end_row = int(rng.get("startRowIndex", 0)), int(rng.get("endRowIndex",
                                                                       sheet.row_count))
    start_col = int(rng.get("startColumnIndex", 0))
    end_col = int(rng.get("endColumnIndex", sheet.column_count))
    if end_row > sheet.row_count or end_col > sheet.column_count:
        raise _invalid(where, f"Range exceeds grid limits. Max rows: {sheet.row_count}, max "
                              f"columns: {sheet.column_count}")
    specs = []
    for spec in body.get("sortSpecs") or [{}]:
        column = int(spec.get("dimensionIndex", start_col))  # a column of the sheet
        specs.append((column, spec.get("sortOrder") == "DESCENDING"))
    sheet.sort(start_row, end_row, start_col, end_col, specs)
    return {}


def update_spreadsheet_properties(book: Spreadsheet, body: dict, where: str) -> dict:
    props = body.get("properties") or {}
    for path in _fields(body.get("fields"), props):
        if path == "title":
            book.title = str(props.get("title") or book.title)
        elif path == "locale":
            book.locale = str(props.get("locale") or book.locale)
        elif path == "timeZone":
            book.time_zone = str(props.get("timeZone") or book.time_zone)
    return {}


HANDLERS: dict[str, Callable[[Spreadsheet, dict, str], dict]] = {
    "appendDimension": append_dimension,
    "insertDimension": insert_dimension,
    "deleteDimension": delete_dimension,
    "updateSheetProperties": update_sheet_properties,
    "updateSpreadsheetProperties": update_spreadsheet_properties,
    "addSheet": add_sheet,
    "deleteSheet": delete_sheet,
    "sortRange": sort_range,
}
