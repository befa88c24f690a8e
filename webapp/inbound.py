"""Outside ``/api/v1``: the inbound webhook ``POST /hooks/in/<token>`` of a binding (Apps
Script ``onEdit``, Zapier or Make push one row) or of a live banner (the body is its new data),
and the Google OAuth callback.

``{"row": n}`` reads that row fresh, renders it and writes its outputs back after checking the
row still holds the same data; ``{"values": {column: value, …}}`` renders the values as given
and writes to the row found by the key column (or, without one, the rows holding that data).
The answer is the render object (``202`` when rendering outlasts the sync limit: the next sync
writes it), with the sheet rows written.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, request
from sqlalchemy import select

from connectors.base import Cell, Connector, Table
from renderer.key import referenced_names

from . import syncs
from .errors import ApiError
from .extensions import db, limiter
from .mapping import Columns, Plan, fingerprint, locate, make_plan
from .models import Binding, LiveBanner, Source
from .rendering import (
    load_version,
    perform,
    render_object,
    stored_request,
    template_and_version,
)

bp = Blueprint("inbound", __name__)


@bp.post("/hooks/in/<token>")
@limiter.limit(lambda: current_app.config["PUBLIC_RATE_LIMIT"])
def inbound_hook(token: str):
    binding = db.session.scalar(select(Binding).where(Binding.inbound_token == token))
    if binding is not None:
        return push_row(binding, _body())
    banner = db.session.scalar(select(LiveBanner).where(LiveBanner.inbound_token == token))
    if banner is None:
        raise ApiError(404, "hook_not_found", "no binding or live banner has this inbound URL")
    return push_banner(banner)


def push_banner(banner: LiveBanner) -> tuple[dict[str, Any], int]:
    """A live banner's inbound hook: the body (JSON object or form fields) is its new data."""
    from . import live

    body = request.get_json(silent=True) if request.mimetype == "application/json" else \
        request.form.to_dict()
    if not isinstance(body, dict) or not body:
        raise ApiError(400, "invalid_json", "send the banner's data as a JSON object or form "
                       "fields")
    snap = live.push(banner, body)
    return render_object(snap, cached=False), 200


def _body() -> dict[str, Any]:
    if request.mimetype == "application/json":
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_json", "the body is not a JSON object")
        return body
    form = request.form.to_dict()
    if "row" in form:
        return {"row": form["row"]}
    return {"values": form}


def push_row(binding: Binding, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    template, version = template_and_version(binding.workspace_id, binding.template_id, None)
    tpl = load_version(version)
    names = [*tpl.variables, *sorted(referenced_names(tpl))]
    connector = syncs.connect(db.session.get(Source, binding.source_id))
    if "row" in body:
        number = _row_number(body["row"], connector)
        table = connector.read_rows([number])
        plan = make_plan(binding, names, table.header)
        columns, _ = locate(plan, table)
        row = table.rows[0] if table.rows else None
        if row is None or columns.skipped(row):
            raise ApiError(422, "row_empty", f"row {number} has no data to render (blank, or "
                           "left out by the filter column)")
        variables, wanted = columns.variables(row), columns.fingerprint(row)
        targets = None  # checked again after rendering
    elif isinstance(body.get("values"), dict):
        table = connector.read()
        plan = make_plan(binding, names, table.header)
        columns, _ = locate(plan, table)
        variables, wanted, targets = _from_values(body["values"], plan, columns, table)
    else:
        raise ApiError(400, "invalid_request", 'send {"row": <sheet row number>} or '
                       '{"values": {<column>: <value>, …}}')
    req = stored_request(template, version, variables, {}, binding.format,
                         {"size": binding.size})
    snap, cached = perform(req, workspace_id=binding.workspace_id,
                           api_key_id=binding.api_key_id, metadata={"binding": binding.id})
    answer = render_object(snap, cached=cached)
    if snap["status"] != "completed":
        return {**answer, "rows": []}, 202
    rows = _write_back(connector, plan, wanted, targets, answer["url"],
                       number if targets is None else None)
    return {**answer, "rows": rows}, 200 if cached else 201


def _row_number(value: Any, connector: Connector) -> int:
    header_row = int(connector.config.get("header_row") or 1)
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number <= header_row:
        raise ApiError(422, "invalid_row", f"row: a sheet row number below the header row "
                       f"({header_row}); got {value!r}")
    return number


def _from_values(values: dict[str, Any], plan: Plan, columns: Columns,
                 table: Table) -> tuple[dict[str, str], str, list[int]]:
    given = {str(k).strip(): "" if v is None else str(v) for k, v in values.items()}
    variables = {var: given.get(header, "") for var, header in plan.mapping.items()}
    if plan.key:
        if not given.get(plan.key):
            raise ApiError(422, "key_missing", f"values: the key column {plan.key!r} is "
                           "needed to find the row")
        targets = [r.number for r in table.rows if r.get(columns.key) == given[plan.key]]
    else:
        wanted = fingerprint(variables, None)
        targets = [r.number for r in table.rows if not columns.skipped(r)
                   and columns.fingerprint(r) == wanted]
    return variables, "", targets


def _write_back(connector: Connector, plan: Plan, wanted: str, targets: list[int] | None,
                url: str, number: int | None) -> list[int]:
    """Write the URL (status, thumbnail) into the rows; a pushed row number is read again
    first, and left alone if its data changed meanwhile."""
    table = connector.read() if number is None else connector.read_rows([number])
    columns, missing = locate(plan, table)
    if missing:
        table = connector.read()  # new columns go after every used column of the sheet
        added = connector.add_columns(table, missing)
        columns = syncs.with_added(columns, plan, added)
        connector.write([Cell(table.header_row, col, h) for h, col in added.items()])
    if number is not None:
        rows = [r.number for r in table.rows
                if r.number == number and columns.fingerprint(r) == wanted]
    else:
        rows = targets or []
    cells = [Cell(n, col, value, formula) for n in rows
             for col, value, formula in syncs.done_values(columns, url) if col is not None]
    connector.write(cells)
    return rows


@bp.get("/google/callback")
def google_callback():
    """Where Google sends the browser back after the user allowed access."""
    from .google_oauth import finish

    if request.args.get("error"):
        raise ApiError(400, "google_denied", f"Google said: {request.args['error']}; nothing "
                       "was connected")
    code, state = request.args.get("code"), request.args.get("state")
    if not code or not state:
        raise ApiError(400, "invalid_request", "code and state are required")
    try:
        account = finish(code, state)
    except ApiError:
        raise
    except Exception as exc:  # Authlib's token errors
        raise ApiError(400, "google_refused", f"Google refused the sign-in: {exc}") from None
    return (f"<!doctype html><title>Pixelmerge</title><p>Connected the Google account "
            f"<b>{_escape(account.email)}</b> to Pixelmerge. You can close this window.</p>")


def _escape(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))
