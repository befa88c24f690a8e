"""From a sheet's header row to the columns a binding reads and writes.

Template variables map to column headers: as the binding says, else automatically where a
header's normalised name (case, spaces and punctuation ignored) is the variable's. The plan
keeps header *names*, not positions, so that a re-read finds the columns again even if someone
inserted a column meanwhile.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gspread.utils import rowcol_to_a1

from connectors.base import Row, SourceError, Table

STATUS_DONE = "done"
STATUS_QUEUED = "queued"
_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise(name: str) -> str:
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", name).casefold())


def letter(column: int) -> str:
    return rowcol_to_a1(1, column + 1)[:-1]


@dataclass
class Plan:
    """Header names a binding uses; JSON-able (kept on the run for later writes)."""

    mapping: dict[str, str]  # variable -> header
    key: str | None
    filter: str | None
    url: str
    status: str | None
    thumbnail: str | None
    worksheet: str | None = None  # the tab the first read found

    def outputs(self) -> list[str]:
        return [h for h in (self.url, self.status, self.thumbnail) if h]


@dataclass
class Columns:
    """A plan's headers found in one read: header -> column (0-based)."""

    inputs: dict[str, int]  # variable -> column
    key: int | None
    filter: int | None
    url: int | None  # None until a missing output column is added
    status: int | None
    thumbnail: int | None

    def variables(self, row: Row) -> dict[str, str]:
        return {name: row.get(col) for name, col in self.inputs.items()}

    def fingerprint(self, row: Row) -> str:
        """What a row's output depends on (its mapped cells and key): rows that hold the same
        fingerprint get the same picture."""
        return fingerprint(self.variables(row), row.get(self.key) if self.key is not None
                           else None)

    def skipped(self, row: Row) -> bool:
        """Blank rows (nothing in the mapped or key cells) and rows the filter leaves out."""
        used = [*self.inputs.values(), *([self.key] if self.key is not None else [])]
        if not any(row.get(c).strip() for c in used):
            return True
        return self.filter is not None and row.get(self.filter).strip().upper() != "TRUE"


def fingerprint(variables: Mapping[str, str], key: str | None) -> str:
    data = json.dumps([sorted(variables.items()), key], ensure_ascii=False)
    return hashlib.sha256(data.encode()).hexdigest()[:24]


def make_plan(binding: Any, variables: Iterable[str], header: list[str]) -> Plan:
    """Check a binding's mapping and columns against a header row (auto-mapping the rest)."""
    index = _HeaderIndex(header)
    mapping = map_inputs(binding.mapping, variables, index)
    output = binding.output or {}
    plan = Plan(mapping, _optional(index, binding.key_column, "key_column"),
                _optional(index, binding.filter_column, "filter_column"),
                output.get("url_column") or "Image", output.get("status_column"),
                output.get("thumbnail_column"))
    _check_outputs(plan, index)
    return plan


def map_inputs(given: Mapping[str, str] | None, variables: Iterable[str],
               index: _HeaderIndex | list[str]) -> dict[str, str]:
    """Variable -> header: as given (each must name a real column), the rest auto-mapped."""
    index = index if isinstance(index, _HeaderIndex) else _HeaderIndex(index)
    mapping = {variable: index.find(column, f"mapping.{variable}")
               for variable, column in (given or {}).items()}
    for variable in variables:
        if variable not in mapping:
            found = index.auto(variable)
            if found is not None:
                mapping[variable] = found
    return mapping


def inputs_plan(given: Mapping[str, str] | None, variables: Iterable[str],
                header: list[str]) -> Plan:
    """A plan that only reads (batches from a source): no key, filter or output columns."""
    return Plan(map_inputs(given, variables, header), None, None, "", None, None)


def _optional(index: _HeaderIndex, column: str | None, path: str) -> str | None:
    return index.find(column, path) if column else None


def _check_outputs(plan: Plan, index: _HeaderIndex) -> None:
    inputs = set(plan.mapping.values()) | {plan.key, plan.filter}
    outputs = plan.outputs()
    for header in outputs:
        if header in inputs:
            raise SourceError("output_is_input", f"output: column {header!r} is read by the "
                              "binding; the picture's URL needs a column of its own",
                              details={"path": "output"})
        index.unique(header, "output")
    if len(set(outputs)) != len(outputs):
        raise SourceError("duplicate_output", "output: the URL, status and thumbnail columns "
                          "must be different columns", details={"path": "output"})


def locate(plan: Plan, table: Table) -> tuple[Columns, list[str]]:
    """The plan's columns in ``table``; also the output headers that are missing."""
    index = _HeaderIndex(table.header)
    inputs = {v: index.column(index.find(h, f"mapping.{v}")) for v, h in plan.mapping.items()}
    missing = [h for h in plan.outputs() if index.exact.get(h) is None]
    return Columns(inputs, _column(index, plan.key, "key_column"),
                   _column(index, plan.filter, "filter_column"), _output(index, plan.url),
                   _output(index, plan.status), _output(index, plan.thumbnail)), missing


def _column(index: _HeaderIndex, header: str | None, path: str) -> int | None:
    return index.column(index.find(header, path)) if header else None


def _output(index: _HeaderIndex, header: str | None) -> int | None:
    return index.exact[header][0] if header and header in index.exact else None


class _HeaderIndex:
    def __init__(self, header: list[str]):
        self.header = header
        self.exact: dict[str, list[int]] = {}
        self.loose: dict[str, list[int]] = {}
        for col, name in enumerate(header):
            name = name.strip()
            if name:
                self.exact.setdefault(name, []).append(col)
                self.loose.setdefault(normalise(name), []).append(col)

    def find(self, column: str, path: str) -> str:
        """The header a binding means by ``column`` (exact, else case and spacing ignored)."""
        if column.strip() in self.exact:
            return self.unique(column.strip(), path)
        found = self.loose.get(normalise(column), [])
        if len(found) == 1:
            return self.header[found[0]].strip()
        if len(found) > 1:
            raise self._duplicate(column, found, path)
        names = ", ".join(repr(h) for h in self.exact) or "none"
        raise SourceError("column_not_found", f"{path}: the header row has no column "
                          f"{column!r}; its columns are {names}", details={"path": path})

    def unique(self, header: str, path: str) -> str:
        found = self.exact.get(header, [])
        if len(found) > 1:
            raise self._duplicate(header, found, path)
        return header

    def auto(self, variable: str) -> str | None:
        found = self.loose.get(normalise(variable), [])
        return self.header[found[0]].strip() if len(found) == 1 else None

    def column(self, header: str) -> int:
        return self.exact[header][0]

    @staticmethod
    def _duplicate(column: str, found: list[int], path: str) -> SourceError:
        where = " and ".join(letter(c) for c in found)
        return SourceError("duplicate_column", f"{path}: the header row has {column!r} more "
                           f"than once (columns {where}); rename one", details={"path": path})
