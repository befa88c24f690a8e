"""The admin API under ``/_emulator/``: JSON, no authentication — a loopback dev tool. Changes
must be sent as ``application/json``, which a cross-site HTML form cannot do.

Cell forms when seeding: a plain value is read as if typed (``"=IMAGE(\\"u\\")"`` is a formula,
``"12"`` a number, ``"'12"`` text); ``{"value": 1234.5, "formatted": "$1,234.50"}`` and
``{"formula": "=A2*2", "value": 42}`` set exactly what they say."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from . import cells, values
from .a1 import A1Error, format_range, parse_range
from .auth import new_service_account, service_account_email
from .context import base_url, state
from .errors import AdminError, GoogleError
from .workbook import ANYONE, ID_ALPHABET, ROLES, Spreadsheet, new_sheet, new_spreadsheet_id

bp = Blueprint("emulator_admin", __name__, url_prefix="/_emulator")


@bp.before_request
def json_only() -> None:
    # DELETE cannot come from a cross-site form; POST must carry a JSON content type
    if request.method == "POST" and not request.is_json:
        raise AdminError("send application/json", 415)


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise AdminError("a JSON object is expected")
    return data


def _book(sid: str) -> Spreadsheet:
    book = state().spreadsheets.get(sid)
    if book is None:
        raise AdminError(f"no spreadsheet {sid}", 404)
    return book


def _summary(book: Spreadsheet) -> dict[str, Any]:
    return {"id": book.id, "title": book.title,
            "url": f"{base_url()}/spreadsheets/d/{book.id}/edit",
            "shared_with": dict(book.shared_with),
            "sheets": [sheet.properties(i) for i, sheet in enumerate(book.sheets)]}


@bp.post("/reset")
def reset() -> dict[str, Any]:
    state().reset()
    return {"reset": True}


@bp.get("/spreadsheets")
def list_spreadsheets() -> dict[str, Any]:
    with state().lock:
        return {"spreadsheets": [_summary(book) for book in state().spreadsheets.values()]}


@bp.post("/spreadsheets")
def create_spreadsheet() -> tuple[dict[str, Any], int]:
    """``{"title", "sheets": {"Sheet1": [[row], ...]}, "shared_with": [emails] or
    {"email": "reader"}, "rows": 1000, "cols": 26, "id"?}`` -> ``{"id", "url", ...}``."""
    body = _body()
    sid = body.get("id") or new_spreadsheet_id()
    if not isinstance(sid, str) or not sid or any(c not in ID_ALPHABET for c in sid):
        raise AdminError("id must be made of A-Z, a-z, 0-9, - and _")
    book = Spreadsheet(sid, str(body.get("title") or "Untitled spreadsheet"),
                       _sheets(body), _sharing(body.get("shared_with", [])))
    with state().changing():
        if sid in state().spreadsheets:
            raise AdminError(f"spreadsheet {sid} exists", 409)
        state().spreadsheets[sid] = book
        return _summary(book), 201


def _sheets(body: dict[str, Any]) -> list:
    spec = body.get("sheets") or {"Sheet1": []}
    if not isinstance(spec, dict):
        raise AdminError('sheets is an object: {"Sheet1": [[...], ...]}')
    rows, cols = int(body.get("rows", 1000)), int(body.get("cols", 26))
    made = []
    for title, content in spec.items():
        if isinstance(content, dict):
            made.append(new_sheet(title, content.get("values"), rows=int(content.get("rows", rows)),
                                  columns=int(content.get("cols", cols))))
        elif isinstance(content, list):
            made.append(new_sheet(title, content, rows=rows, columns=cols))
        else:
            raise AdminError(f"sheet {title!r}: a list of rows is expected")
    return made


def _sharing(value: Any) -> dict[str, str]:
    if isinstance(value, list):
        value = {email: "writer" for email in value}
    if not isinstance(value, dict) or any(role not in ROLES for role in value.values()):
        raise AdminError(f'shared_with is a list of emails (or "{ANYONE}") or an object '
                         'of email -> "reader" | "writer"')
    return {str(email): role for email, role in value.items()}


@bp.get("/spreadsheets/<sid:sid>")
def get_spreadsheet(sid: str) -> dict[str, Any]:
    with state().lock:
        return _summary(_book(sid))


@bp.delete("/spreadsheets/<sid:sid>")
def delete_spreadsheet(sid: str) -> dict[str, Any]:
    with state().changing():
        _book(sid)
        del state().spreadsheets[sid]
    return {"deleted": sid}


@bp.post("/spreadsheets/<sid:sid>/sheets")
def add_sheet(sid: str) -> tuple[dict[str, Any], int]:
    """``{"title", "values"?, "rows"?, "cols"?}``"""
    body = _body()
    with state().changing():
        book = _book(sid)
        title = str(body.get("title") or "")
        if not title or book.has_title(title):
            raise AdminError("a new, unused title is needed")
        book.sheets.append(new_sheet(title, body.get("values"), rows=int(body.get("rows", 1000)),
                                     columns=int(body.get("cols", 26))))
        return _summary(book), 201


@bp.get("/spreadsheets/<sid:sid>/cells")
def get_cells(sid: str) -> dict[str, Any]:
    """``?range=Sheet1`` -> the formatted ``values``, the ``formulas`` (FORMULA rendering) and
    the stored ``cells`` (admin cell forms), each trimmed like the API's answers."""
    text = request.args.get("range", "")
    with state().lock:
        book = _book(sid)
        found = _target(book, text)
        shown = values.get(book, text or found.sheet.title)
        formulas = values.get(book, text or found.sheet.title, render="FORMULA")
        start_row, end_row, start_col, end_col = found.clamped()
        stored = [[cells.to_json(cell) for cell in line]
                  for line in found.sheet.block(start_row, end_row, start_col, end_col)]
    return {"range": shown["range"], "values": shown.get("values", []),
            "formulas": formulas.get("values", []), "cells": _trim_none(stored)}


def _target(book: Spreadsheet, text: str) -> values.Target:
    try:
        return values.target(book, text or book.sheets[0].title)
    except GoogleError as exc:
        raise AdminError(exc.message) from exc


def _trim_none(grid: list[list[Any]]) -> list[list[Any]]:
    lines = []
    for line in grid:
        while line and line[-1] is None:
            line = line[:-1]
        lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return lines


@bp.post("/spreadsheets/<sid:sid>/cells")
def set_cells(sid: str) -> dict[str, Any]:
    """``{"range": "Sheet1!B2", "values": [[cell form, ...], ...]}``: written from the range's
    top-left cell; the grid grows to fit."""
    body = _body()
    grid = body.get("values")
    if not isinstance(grid, list) or not all(isinstance(line, list) for line in grid):
        raise AdminError("values is a list of rows")
    with state().changing():
        book = _book(sid)
        try:
            a1 = parse_range(str(body.get("range") or "A1"), book.titles())
        except A1Error as exc:
            raise AdminError(str(exc)) from exc
        sheet = book.sheet_titled(a1.sheet)
        width = max((len(line) for line in grid), default=0)
        sheet.row_count = max(sheet.row_count, a1.start_row + len(grid))
        sheet.column_count = max(sheet.column_count, a1.start_col + width)
        for r, line in enumerate(grid):
            for c, value in enumerate(line):
                sheet.put(a1.start_row + r, a1.start_col + c, cells.seed(value))
        return {"updatedRange": format_range(sheet.title, a1.start_row, a1.start_col,
                                             a1.start_row + max(len(grid), 1),
                                             a1.start_col + max(width, 1))}


@bp.post("/spreadsheets/<sid:sid>/share")
def share(sid: str) -> dict[str, Any]:
    """``{"email": "a@example.com" | "anyone", "role": "writer" | "reader"}``"""
    body = _body()
    email, role = body.get("email"), body.get("role", "writer")
    if not isinstance(email, str) or not email or role not in ROLES:
        raise AdminError('email and a role of "reader" or "writer" are needed')
    with state().changing():
        book = _book(sid)
        book.shared_with[email] = role
        return _summary(book)


@bp.post("/spreadsheets/<sid:sid>/unshare")
def unshare(sid: str) -> dict[str, Any]:
    email = _body().get("email")
    with state().changing():
        book = _book(sid)
        book.shared_with.pop(str(email), None)
        return _summary(book)


@bp.post("/users/<email>/revoke")
def revoke_user(email: str) -> dict[str, Any]:
    with state().changing():
        return {"revoked_grants": state().auth.revoke_user(email)}


@bp.post("/tokens/expire")
def expire_tokens() -> dict[str, Any]:
    """Every access token stops working (401); refresh tokens and key files still do."""
    with state().changing():
        count = len(state().auth.access_tokens)
        state().auth.access_tokens.clear()
    return {"expired": count}


@bp.get("/service-accounts")
def service_accounts() -> dict[str, Any]:
    token_uri = base_url() + "/token"
    with state().lock:
        return {"service_accounts": [
            {"client_email": account.client_email, "key": account.key_file(token_uri)}
            for account in state().auth.service_accounts]}


@bp.post("/service-accounts")
def create_service_account() -> tuple[dict[str, Any], int]:
    """``{"name": "other"}`` -> another service account and its JSON key."""
    name = str(_body().get("name") or "")
    if not name.replace("-", "").isalnum() or not 6 <= len(name) <= 30:
        raise AdminError("name: 6 to 30 letters, digits or dashes")
    with state().changing():
        if state().auth.service_account(service_account_email(name)):
            raise AdminError(f"service account {name} exists", 409)
        account = new_service_account(name)
        state().auth.service_accounts.append(account)
    return {"client_email": account.client_email,
            "key": account.key_file(base_url() + "/token")}, 201


@bp.get("/faults")
def faults() -> dict[str, Any]:
    with state().lock:
        return {"faults": [fault.to_json() for fault in state().faults]}


@bp.post("/faults")
def add_fault() -> tuple[dict[str, Any], int]:
    """``{"status": 429 | 500 | 503 | ..., "count": N, "methods": ["GET"]?, "paths":
    "values"?, "retry_after": seconds?}``: the next N matching /v4 requests fail so."""
    return state().add_fault(_body()).to_json(), 201


@bp.delete("/faults")
def clear_faults() -> dict[str, Any]:
    with state().lock:
        state().faults.clear()
    return {"faults": []}


@bp.get("/quota")
def quota() -> dict[str, Any]:
    return {"per_minute": state().quota_per_minute, "used": state().quota_usage()}


@bp.post("/quota")
def set_quota() -> dict[str, Any]:
    """``{"per_minute": N | null}``: reads and writes are counted apart, per principal, as at
    Google; setting it also resets the counters."""
    state().set_quota(_body().get("per_minute"))
    return quota()


@bp.post("/quota/reset")
def reset_quota() -> dict[str, Any]:
    state().reset_quota()
    return quota()


@bp.get("/requests")
def requests_log() -> dict[str, Any]:
    with state().lock:
        return {"requests": list(state().log)}


@bp.delete("/requests")
def clear_requests() -> dict[str, Any]:
    with state().lock:
        state().log.clear()
    return {"requests": []}
