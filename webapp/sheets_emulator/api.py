"""The Sheets API v4 subset under ``/v4/spreadsheets``. Every request needs a Bearer token the
emulator issued; then queued faults, then the per-minute quota, then the spreadsheet's sharing
decide, in that order, as Google's front end would."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, request

from . import structure, values
from .auth import READ_SCOPES, WRITE_SCOPES, AccessToken
from .cells import INPUT_OPTIONS, RENDER_OPTIONS
from .context import base_url, json_body, state
from .errors import INSUFFICIENT_SCOPES, MISSING_CREDENTIALS, GoogleError, quota_exceeded
from .workbook import Spreadsheet, new_sheet, new_spreadsheet_id

bp = Blueprint("sheets_api", __name__, url_prefix="/v4")
INSERT_OPTIONS = ("OVERWRITE", "INSERT_ROWS")


@bp.before_request
def gate() -> None:
    g.kind = "read" if request.method == "GET" else "write"
    token = _authenticate()
    g.principal, g.scopes = token.principal, set(token.scopes)
    fault = state().take_fault(request.method, request.path)
    if fault is not None:
        if fault.status == 429:
            raise quota_exceeded(g.kind.capitalize(), retry_after=fault.retry_after)
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after else None
        raise GoogleError(fault.status, headers=headers)
    if not state().admit(g.principal, g.kind):
        raise quota_exceeded(g.kind.capitalize())


def _authenticate() -> AccessToken:
    header = request.headers.get("Authorization", "")
    if not header:
        raise GoogleError(401, MISSING_CREDENTIALS, headers=_challenge())
    scheme, _, token = header.partition(" ")
    with state().lock:
        found = state().auth.lookup(token.strip()) if scheme.lower() == "bearer" else None
    if found is None:
        raise GoogleError(401, headers=_challenge())
    return found


def _challenge() -> dict[str, str]:
    return {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'}


def _book(sid: str, *, write: bool = False) -> Spreadsheet:
    """The spreadsheet if the caller may read it (or write it); 404 and 403 as at Google."""
    if not g.scopes & (WRITE_SCOPES if write else READ_SCOPES):
        raise GoogleError(403, INSUFFICIENT_SCOPES)
    book = state().spreadsheets.get(sid)
    if book is None:
        raise GoogleError(404)
    role = book.role(g.principal)
    if role is None or write and role != "writer":
        raise GoogleError(403)
    return book


def _render_option(name: str = "valueRenderOption") -> str:
    return values.check_option(name, request.args.get(name), RENDER_OPTIONS,
                               "FORMATTED_VALUE")


def _major(value: str | None) -> str:
    return values.check_option("majorDimension", value, values.DIMENSIONS, "ROWS")


@bp.get("/spreadsheets/<sid:sid>")
def get_spreadsheet(sid: str) -> dict[str, Any]:
    with state().lock:
        return _book(sid).metadata(base_url())


@bp.post("/spreadsheets")
def create_spreadsheet() -> dict[str, Any]:
    body = json_body()
    title = (body.get("properties") or {}).get("title") or "Untitled spreadsheet"
    titles = [(s.get("properties") or {}).get("title") for s in body.get("sheets") or []]
    book = Spreadsheet(new_spreadsheet_id(), title,
                       [new_sheet(t or f"Sheet{i + 1}") for i, t in enumerate(titles or [None])],
                       {g.principal: "writer"})
    with state().changing():
        state().spreadsheets[book.id] = book
        return book.metadata(base_url())


@bp.post("/spreadsheets/<sid:sid>:batchUpdate")
def batch_update(sid: str) -> dict[str, Any]:
    body = json_body()
    with state().changing():
        changed, replies = structure.apply(_book(sid, write=True), body.get("requests"))
        state().spreadsheets[sid] = changed
    return {"spreadsheetId": sid, "replies": replies}


@bp.get("/spreadsheets/<sid:sid>/values/<path:rng>")
def get_values(sid: str, rng: str) -> dict[str, Any]:
    render, major = _render_option(), _major(request.args.get("majorDimension"))
    with state().lock:
        return values.get(_book(sid), rng, render=render, major=major)


@bp.get("/spreadsheets/<sid:sid>/values:batchGet")
def batch_get(sid: str) -> dict[str, Any]:
    render, major = _render_option(), _major(request.args.get("majorDimension"))
    with state().lock:
        book = _book(sid)
        ranges = [values.get(book, text, render=render, major=major)
                  for text in request.args.getlist("ranges")]
    return {"spreadsheetId": sid, "valueRanges": ranges} if ranges else {"spreadsheetId": sid}


@bp.put("/spreadsheets/<sid:sid>/values/<path:rng>")
def update_values(sid: str, rng: str) -> dict[str, Any]:
    body = json_body()
    option = values.check_option("valueInputOption", request.args.get("valueInputOption"),
                                 INPUT_OPTIONS)
    major = _major(body.get("majorDimension"))
    with state().changing():
        book = _book(sid, write=True)
        result = values.update(book, rng, body.get("values"), option=option, major=major)
        return _with_values(book, result, request.args)


def _with_values(book: Spreadsheet, result: dict[str, Any], options: Any) -> dict[str, Any]:
    if str(options.get("includeValuesInResponse", "")).lower() != "true":
        return result
    render = values.check_option("responseValueRenderOption",
                                 options.get("responseValueRenderOption"), RENDER_OPTIONS,
                                 "FORMATTED_VALUE")
    return values.updated_data(book, result, render=render, major="ROWS")


@bp.post("/spreadsheets/<sid:sid>/values/<path:rng>")
def values_action(sid: str, rng: str) -> dict[str, Any]:
    text, _, action = rng.rpartition(":")
    if action == "append":
        return _append(sid, text)
    if action == "clear":
        with state().changing():
            return {"spreadsheetId": sid,
                    "clearedRange": values.clear(_book(sid, write=True), text)}
    raise GoogleError(404)


def _append(sid: str, text: str) -> dict[str, Any]:
    body = json_body()
    option = values.check_option("valueInputOption", request.args.get("valueInputOption"),
                                 INPUT_OPTIONS)
    insert = values.check_option("insertDataOption", request.args.get("insertDataOption"),
                                 INSERT_OPTIONS, "OVERWRITE")
    major = _major(body.get("majorDimension"))
    with state().changing():
        book = _book(sid, write=True)
        result = values.append(book, text, body.get("values"), option=option, insert=insert,
                               major=major)
        if str(request.args.get("includeValuesInResponse", "")).lower() == "true":
            result["updates"] = _with_values(book, result["updates"], request.args)
        return result


@bp.post("/spreadsheets/<sid:sid>/values:batchUpdate")
def batch_update_values(sid: str) -> dict[str, Any]:
    body = json_body()
    option = values.check_option("valueInputOption", body.get("valueInputOption"),
                                 INPUT_OPTIONS)
    data = body.get("data") or []
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise GoogleError(400, "Invalid data: a list of value ranges is expected")
    with state().changing():
        book = _book(sid, write=True)
        prepared = [values.prepare(book, str(item.get("range", "")), item.get("values"),
                                   option=option, major=_major(item.get("majorDimension")))
                    for item in data]
        responses = [_with_values(book, values.commit(book, *plan), body) for plan in prepared]
    return values.batch_totals(sid, responses, prepared)


@bp.post("/spreadsheets/<sid:sid>/values:batchClear")
def batch_clear(sid: str) -> dict[str, Any]:
    ranges = json_body().get("ranges") or []
    with state().changing():
        book = _book(sid, write=True)
        for text in ranges:  # all parse before any is cleared
            values.target(book, str(text))
        cleared = [values.clear(book, str(text)) for text in ranges]
    return {"spreadsheetId": sid, "clearedRanges": cleared}
