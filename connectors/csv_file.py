"""An uploaded CSV or XLSX file as a source, for people without a Google account.

It behaves like a sheet: the same header row, mapping and output columns; a sync writes the
URL, status and thumbnail cells into the file, which is then the downloadable result. Files live
in the web app's storage under their content's hash; a write stores the new content and points
``config["file"]`` at it (the web app saves the changed config).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from collections.abc import Mapping
from typing import Any

from .base import Cell, Connector, Row, SourceError, Table

FORMATS = {"csv": "text/csv", "xlsx":
           "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def file_format(filename: str) -> str:
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if ext not in FORMATS:
        raise SourceError("unsupported_file", f"file: {filename!r} is not a .csv or .xlsx file",
                          status=415, details={"path": "file"})
    return ext


def store(files: Any, data: bytes, fmt: str) -> str:
    """Keep a file's content under its hash; returns its storage name."""
    name = f"sources/{hashlib.sha256(data).hexdigest()}.{fmt}"
    files.put(name, data, content_type=FORMATS[fmt])
    return name


class FileSource(Connector):
    type = "file"
    name = "CSV or XLSX upload"
    writable = True

    @classmethod
    def configuration_schema(cls, settings: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "filename": {"type": "string", "title": "File", "readOnly": True,
                             "description": "Upload the file with multipart/form-data"},
                "file": {"type": "string", "readOnly": True},
                "format": {"type": "string", "enum": ["csv", "xlsx"], "readOnly": True},
                "worksheet": {"type": "string", "title": "Worksheet (XLSX)",
                              "description": "The first worksheet when omitted"},
                "header_row": {"type": "integer", "minimum": 1, "default": 1,
                               "title": "Header row"},
            },
        }

    @property
    def header_row(self) -> int:
        return int(self.config.get("header_row") or 1)

    def _data(self) -> bytes:
        name = self.config.get("file")
        if not name or self.context.files is None:
            raise SourceError("file_missing", "file: this source has no uploaded file", status=422)
        return self.context.files.get(name)

    def read(self) -> Table:
        grid = self._grid()
        hr = self.header_row
        if len(grid) < hr or not any(c.strip() for c in grid[hr - 1]):
            raise SourceError("header_row_missing", f"header_row: row {hr} of the file is "
                              "empty; put the column names there", status=422,
                              details={"path": "config.header_row"})
        rows = [Row(hr + 1 + i, cells) for i, cells in enumerate(grid[hr:])]
        return Table(grid[hr - 1], rows, header_row=hr, title=self.config.get("filename", ""))

    def _grid(self) -> list[list[str]]:
        data = self._data()
        if self.config.get("format") == "xlsx":
            return _xlsx_grid(self._workbook(data, values=True), self.config.get("worksheet"))
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise SourceError("invalid_file", "file: not UTF-8 text; save the CSV as UTF-8",
                              status=422) from None
        return [list(r) for r in csv.reader(io.StringIO(text, newline=""))]

    def _workbook(self, data: bytes, *, values: bool):
        import openpyxl

        try:
            return openpyxl.load_workbook(io.BytesIO(data), data_only=values)
        except Exception as exc:  # openpyxl raises many kinds for a damaged file
            raise SourceError("invalid_file", f"file: not a readable XLSX workbook "
                              f"({exc.__class__.__name__})", status=422) from None

    def add_columns(self, table: Table, headers: list[str]) -> dict[str, int]:
        start = table.width
        table.width = start + len(headers)
        return {header: start + i for i, header in enumerate(headers)}

    def write(self, cells: list[Cell]) -> None:
        if not cells:
            return
        fmt = self.config.get("format")
        data = self._data()
        out = _write_xlsx(self, data, cells) if fmt == "xlsx" else _write_csv(self, cells)
        self.config["file"] = store(self.context.files, out, fmt)


def _write_csv(source: FileSource, cells: list[Cell]) -> bytes:
    grid = source._grid()
    for cell in cells:
        while len(grid) < cell.row:
            grid.append([])
        line = grid[cell.row - 1]
        line.extend([""] * (cell.column + 1 - len(line)))
        line[cell.column] = cell.value
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerows(grid)
    return buffer.getvalue().encode("utf-8")


def _write_xlsx(source: FileSource, data: bytes, cells: list[Cell]) -> bytes:
    book = source._workbook(data, values=False)  # formulas kept as formulas
    sheet = _sheet(book, source.config.get("worksheet"))
    for cell in cells:
        sheet.cell(row=cell.row, column=cell.column + 1, value=cell.value)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _sheet(book, name: str | None):
    if name is None:
        return book.worksheets[0]
    if name not in book.sheetnames:
        raise SourceError("worksheet_not_found", f"worksheet: the workbook has no sheet named "
                          f"{name!r}; its sheets are {', '.join(book.sheetnames)}", status=422,
                          details={"path": "config.worksheet"})
    return book[name]


def _xlsx_grid(book, name: str | None) -> list[list[str]]:
    sheet = _sheet(book, name)
    return [[_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]


def _text(value: Any) -> str:
    """A cell as a spreadsheet would show it plainly: 10 not 10.0, dates as ISO."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ") if value.time() != dt.time() else value.date().isoformat()
    return str(value)
