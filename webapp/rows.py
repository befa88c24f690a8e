"""Reading rows of variables from CSV or JSON files (the CLI's ``--data``)."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any


class DataError(Exception):
    """The data file cannot be read as rows."""


def read_rows(source: str) -> list[dict[str, Any]]:
    """Rows from a .csv or .json file, or from standard input with ``-`` (JSON or CSV)."""
    if source == "-":
        text = sys.stdin.read().removeprefix("\ufeff")  # as utf-8-sig does for files
        kind = "json" if text.lstrip()[:1] in ("[", "{") else "csv"
    else:
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read {source}: {exc}") from None
        kind = "json" if path.suffix.lower() == ".json" else "csv"
        if path.suffix.lower() not in (".json", ".csv"):
            raise DataError(f"{source}: data must be a .csv or .json file")
    return _json_rows(text) if kind == "json" else csv_rows(text)


def _json_rows(text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"malformed JSON at line {exc.lineno} column {exc.colno}: "
                        f"{exc.msg}") from None
    if isinstance(data, dict):
        data = data.get("rows", data.get("items", [data]))
    if not isinstance(data, list):
        raise DataError("JSON data must be a list of objects")
    rows = []
    for number, row in enumerate(data, start=1):
        if isinstance(row, dict) and isinstance(row.get("variables"), dict):
            row = row["variables"]
        if not isinstance(row, dict):
            raise DataError(f"row {number}: expected an object of variables, got {row!r}")
        rows.append(row)
    return rows


def csv_rows(text: str) -> list[dict[str, Any]]:
    """Rows of a CSV with a header row; quoted cells may hold line breaks."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        if not reader.fieldnames:
            raise DataError("the CSV has no header row")
        return [_csv_row(row, number) for number, row in enumerate(reader, start=1)]
    except csv.Error as exc:
        raise DataError(f"not a readable CSV: {exc}") from None


def _csv_row(row: dict, number: int) -> dict[str, Any]:
    if None in row:
        raise DataError(f"row {number}: more cells than header columns")
    return {k.strip(): (v if v is not None else "") for k, v in row.items()}
