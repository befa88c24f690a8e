"""A1 notation as the Sheets API reads it: ``Sheet1``, ``'My Sheet'!A1:C3``, ``Sheet1!A:C``,
``Sheet1!2:5``, ``A2:C`` (the first sheet), with ``''`` escaping quotes in a quoted title.

Indices are 0-based and end-exclusive; ``None`` means "to the edge of the grid"."""

from __future__ import annotations

import re
from dataclasses import dataclass

ENDPOINT = re.compile(r"([A-Za-z]{0,3})([0-9]{0,7})")
PLAIN_TITLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
LOOKS_LIKE_CELL = re.compile(r"[A-Za-z]{1,3}[0-9]+|[Rr][0-9]*[Cc][0-9]*")


class A1Error(ValueError):
    """The text is not a range of this spreadsheet; the message is Google's."""

    def __init__(self, text: str):
        super().__init__(f"Unable to parse range: {text}")


@dataclass(frozen=True)
class A1Range:
    sheet: str | None  # None: the first sheet
    start_row: int = 0
    start_col: int = 0
    end_row: int | None = None
    end_col: int | None = None
    single: bool = False  # one cell: writes use it as an anchor, not as a bound


def column_index(letters: str) -> int:
    index = 0
    for char in letters.upper():
        index = index * 26 + ord(char) - 64
    return index - 1


def column_letters(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def quote_title(title: str, *, always: bool = False) -> str:
    if not always and PLAIN_TITLE.fullmatch(title) and not LOOKS_LIKE_CELL.fullmatch(title):
        return title
    return "'" + title.replace("'", "''") + "'"


def format_range(title: str, start_row: int, start_col: int, end_row: int, end_col: int, *,
                 quote_always: bool = False) -> str:
    """``Sheet1!A1:C3`` (``Sheet1!A1`` for one cell) from 0-based, end-exclusive bounds."""
    first = f"{column_letters(start_col)}{start_row + 1}"
    last = f"{column_letters(max(end_col, start_col + 1) - 1)}{max(end_row, start_row + 1)}"
    cells = first if first == last else f"{first}:{last}"
    return f"{quote_title(title, always=quote_always)}!{cells}"


def parse_range(text: str, titles: list[str]) -> A1Range:
    """Parse ``text`` against the spreadsheet's sheet ``titles``; unknown sheets are errors."""
    sheet, cells = _split(text)
    if sheet is None and cells is not None and _cells(cells) is None:
        sheet, cells = cells, None  # a bare word is a sheet title
    if sheet is not None:
        sheet = _find_title(sheet, titles, text)
    if cells is None:
        return A1Range(sheet)
    parsed = _cells(cells)
    if parsed is None:
        raise A1Error(text)
    return A1Range(sheet, *parsed)


def _split(text: str) -> tuple[str | None, str | None]:
    if text.startswith("'"):
        end = _closing_quote(text)
        if end is None:
            raise A1Error(text)
        title, rest = text[1:end].replace("''", "'"), text[end + 1:]
        if rest and not rest.startswith("!"):
            raise A1Error(text)
        return title, rest[1:] or None
    if "!" in text:
        title, cells = text.rsplit("!", 1)
        return title, cells or None
    return None, text


def _closing_quote(text: str) -> int | None:
    i = 1
    while i < len(text):
        if text[i] == "'":
            if text[i + 1:i + 2] != "'":
                return i
            i += 1
        i += 1
    return None


def _find_title(name: str, titles: list[str], text: str) -> str:
    for title in titles:  # Google matches sheet names case-insensitively
        if title.lower() == name.lower():
            return title
    raise A1Error(text)


def _cells(text: str) -> tuple[int, int, int | None, int | None, bool] | None:
    parts = text.split(":")
    if len(parts) > 2:
        return None
    ends = [ENDPOINT.fullmatch(part) for part in parts]
    if not all(ends) or any(not (m.group(1) or m.group(2)) for m in ends):
        return None
    (c1, r1), (c2, r2) = ends[0].groups(), ends[-1].groups()
    if any(r and int(r) == 0 for r in (r1, r2)):
        return None
    if len(parts) == 1:
        if not (c1 and r1):
            return None
        row, col = int(r1) - 1, column_index(c1)
        return row, col, row + 1, col + 1, True
    return _bounds(c1, r1, c2, r2)


def _bounds(c1: str, r1: str, c2: str, r2: str) -> tuple[int, int, int | None, int | None, bool]:
    """``A:C``, ``2:5``, ``A2:C``, ``A1:C3``: a missing end runs to the edge of the grid."""
    start_row, end_row = (int(r1) - 1 if r1 else 0), (int(r2) if r2 else None)
    start_col, end_col = (column_index(c1) if c1 else 0), (column_index(c2) + 1 if c2 else None)
    if end_row is not None and end_row <= start_row:  # C3:A1 is A1:C3
        start_row, end_row = end_row - 1, start_row + 1
    if end_col is not None and end_col <= start_col:
        start_col, end_col = end_col - 1, start_col + 1
    return start_row, start_col, end_row, end_col, False
