"""One cell: what the user entered (a value or a formula), the formula's cached value and an
optional display text; how the API's input options read values and its render options show
them.

Formulas are never evaluated: one written through the API has the empty string as its value
(``=IMAGE(...)`` shows nothing in a cell either); the admin API can seed a formula with a
cached value."""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Any

Scalar = str | int | float | bool
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
# numbers a user types with a format: $1,234.50, 1,234, 12.5%
FORMATTED_NUMBER = re.compile(r"([+-]?)(\$?)(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(%?)")
RENDER_OPTIONS = ("FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA")
INPUT_OPTIONS = ("RAW", "USER_ENTERED")


class CellError(ValueError):
    """A value the API does not take (a list or an object)."""


@dataclass
class Cell:
    value: Scalar | None = None
    formula: str | None = None
    formatted: str | None = None

    def is_empty(self) -> bool:
        return self.formula is None and (self.value is None or self.value == "") \
            and not self.formatted


SKIP = object()  # a null in the request's values: leave the cell as it is


def from_input(value: Any, option: str) -> Cell | None | object:
    """A cell from a request's value: ``None`` clears the cell, ``SKIP`` leaves it alone."""
    if value is None:
        return SKIP
    if isinstance(value, bool | int | float):
        return Cell(_number(value))
    if not isinstance(value, str):
        raise CellError(value)
    if value == "":
        return None
    return parse_user_entered(value) if option == "USER_ENTERED" else Cell(value)


def parse_user_entered(text: str) -> Cell | None:
    """As if typed into the sheet: formulas, numbers, booleans; a leading ``'`` keeps text."""
    if text.startswith("'"):
        return Cell(text[1:]) if len(text) > 1 else None
    if text.startswith("=") and len(text) > 1:
        return Cell("", formula=text)
    stripped = text.strip()
    if stripped.upper() in ("TRUE", "FALSE"):
        return Cell(stripped.upper() == "TRUE")
    if NUMBER.fullmatch(stripped):
        return Cell(_number(float(stripped) if any(c in stripped for c in ".eE")
                            else int(stripped)))
    return _formatted_number(stripped) or Cell(text)


def _formatted_number(text: str) -> Cell | None:
    match = FORMATTED_NUMBER.fullmatch(text)
    if not match or not (match.group(2) or "," in match.group(3) or match.group(5)):
        return None
    sign, _, whole, fraction, percent = match.groups()
    number = float(sign + whole.replace(",", "") + (fraction or ""))
    return Cell(_number(number / 100 if percent else number), formatted=text)


def _number(value: int | float | bool) -> int | float | bool:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)  # Google's JSON has 1, not 1.0
    return value


def seed(value: Any) -> Cell | None:
    """The admin API's cell forms: a plain value is read as USER_ENTERED;
    ``{"value": 1234.5, "formatted": "$1,234.50"}`` and ``{"formula": "=A2*2", "value": 42}``
    set exactly what they say."""
    if isinstance(value, dict):
        cell = Cell(_number(value["value"]) if isinstance(value.get("value"), int | float)
                    else value.get("value"), value.get("formula"), value.get("formatted"))
        if cell.formula is not None and cell.value is None:
            cell.value = ""
        return None if cell.is_empty() else cell
    result = from_input(value, "USER_ENTERED")
    return None if result is SKIP else result


def to_json(cell: Cell | None) -> Any:
    if cell is None:
        return None
    if cell.formula is None and cell.formatted is None and not isinstance(cell.value, str):
        return cell.value
    return {key: val for key, val in (("value", cell.value), ("formula", cell.formula),
                                      ("formatted", cell.formatted)) if val is not None}


def from_json(data: Any) -> Cell | None:
    """The inverse of :func:`to_json` (no parsing: stored text stays text)."""
    if data is None:
        return None
    if isinstance(data, dict):
        return Cell(data.get("value"), data.get("formula"), data.get("formatted"))
    return Cell(data)


def render(cell: Cell | None, option: str) -> Scalar:
    if cell is None:
        return ""
    if option == "FORMULA" and cell.formula is not None:
        return cell.formula
    if option == "FORMATTED_VALUE":
        return cell.formatted if cell.formatted is not None else format_value(cell.value)
    return "" if cell.value is None else cell.value


def format_value(value: Scalar | None) -> str:
    """Google's "automatic" format: integers without ``.0``, booleans as TRUE/FALSE."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return format(value, ".15g").replace("e+", "E+").replace("e-", "E-")
    return value


def _compare_one(a: Cell | None, b: Cell | None) -> int:
    blank_a, blank_b = a is None or a.is_empty(), b is None or b.is_empty()
    if blank_a or blank_b:
        return int(blank_a) - int(blank_b)
    key_a, key_b = _sort_key(a.value), _sort_key(b.value)
    return (key_a > key_b) - (key_a < key_b)


def _sort_key(value: Scalar | None) -> tuple:
    if isinstance(value, bool):
        return (2, value)
    if isinstance(value, int | float):
        return (0, value)
    return (1, str(value).lower())


def row_sort_key(specs: list[tuple[int, bool]]):
    """A key sorting rows (lists of cells) by ``(column, descending)`` specs: numbers, then
    text, then booleans; blanks last in either direction, as in Sheets."""

    def compare(row_a: list, row_b: list) -> int:
        for column, descending in specs:
            a = row_a[column] if column < len(row_a) else None
            b = row_b[column] if column < len(row_b) else None
            result = _compare_one(a, b)
            blank = a is None or a.is_empty() or b is None or b.is_empty()
            if result:
                return -result if descending and not blank else result
        return 0

    return functools.cmp_to_key(compare)
