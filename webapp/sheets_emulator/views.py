"""The HTML view: the list of spreadsheets and each spreadsheet's sheets as grids, with buttons
to queue faults and reset the quota. Those forms post a per-process token (a page from another
site cannot know it) to their own endpoints, which redirect back."""

from __future__ import annotations

import hmac
import re
from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, request
from werkzeug.wrappers import Response

from . import cells
from .a1 import column_letters
from .context import base_url, state
from .errors import AdminError
from .workbook import Sheet

bp = Blueprint("emulator_views", __name__)
IMAGE = re.compile(r'=\s*IMAGE\(\s*"(https?://[^"]+)"', re.IGNORECASE)
MAX_ROWS = 200
LOG_ROWS = 20


def _common() -> dict[str, Any]:
    return {"csrf": current_app.config["EMULATOR_CSRF_TOKEN"], "faults": state().faults,
            "quota": state().quota_per_minute, "here": request.path}


@bp.get("/")
def index() -> str:
    with state().lock:
        return render_template("index.html", books=list(state().spreadsheets.values()),
                               accounts=state().auth.service_accounts, base=base_url(),
                               log=list(state().log)[-LOG_ROWS:][::-1], **_common())


@bp.get("/spreadsheets/d/<sid:sid>")
def spreadsheet_root(sid: str) -> Response:
    return redirect(f"/spreadsheets/d/{sid}/edit")


@bp.get("/spreadsheets/d/<sid:sid>/edit")
def spreadsheet(sid: str) -> str:
    with state().lock:
        book = state().spreadsheets.get(sid)
        if book is None:
            abort(404)
        return render_template("spreadsheet.html", book=book,
                               sheets=[_grid(sheet) for sheet in book.sheets], **_common())


def _grid(sheet: Sheet) -> dict[str, Any]:
    """The sheet's data (and one blank row and column) as display cells."""
    height = sheet.data_height()
    width = max((len(line) for line in sheet.rows), default=0)
    shown_rows = min(height + 1, sheet.row_count, MAX_ROWS)
    shown_cols = min(width + 1, sheet.column_count)
    rows = [[_display(cell) for cell in line]
            for line in sheet.block(0, shown_rows, 0, shown_cols)]
    rows += [[_display(None)] * shown_cols for _ in range(shown_rows - len(rows))]
    return {"id": sheet.sheet_id, "title": sheet.title, "row_count": sheet.row_count,
            "column_count": sheet.column_count, "rows": rows,
            "letters": [column_letters(c) for c in range(shown_cols)],
            "hidden_rows": max(0, height - shown_rows)}


def _display(cell: cells.Cell | None) -> dict[str, Any]:
    formula = cell.formula if cell else None
    image = IMAGE.match(formula) if formula else None
    return {"text": cells.render(cell, "FORMATTED_VALUE"), "formula": formula,
            "image": image.group(1) if image else None}


def _checked() -> None:
    token = request.form.get("csrf", "")
    if not hmac.compare_digest(token.encode(), current_app.config["EMULATOR_CSRF_TOKEN"].encode()):
        abort(403)


def _back() -> Response:
    target = request.form.get("next", "/")
    return redirect(target if target.startswith("/") and not target.startswith("//") else "/",
                    303)


@bp.post("/ui/faults")
def queue_fault() -> Response:
    _checked()
    try:
        state().add_fault({"status": int(request.form.get("status", "0")),
                           "count": int(request.form.get("count", "1"))})
    except (ValueError, AdminError):
        abort(400)
    return _back()


@bp.post("/ui/quota/reset")
def reset_quota() -> Response:
    _checked()
    state().reset_quota()
    return _back()
