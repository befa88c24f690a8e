"""Renders: ``POST /renders`` (synchronous), ``GET /renders/{id}``, ``GET /renders``."""

from __future__ import annotations

from flask import Blueprint

from ..auth import authenticate
from ..errors import ApiError, not_found
from ..extensions import db
from ..models import Render
from ..openapi import operation, parse_body
from ..rendering import (
    Request,
    enqueue,
    fold,
    format_of,
    load_version,
    perform,
    remember_body,
    repeated_render,
    snapshot,
    template_and_version,
)
from ..rendering import render_object as render_json
from ..schemas import RenderBody, RenderList, RenderListQuery, RenderOut
from ..webhooks import check_target
from .common import current_workspace

bp = Blueprint("renders", __name__)


def _request(body: RenderBody, workspace_id: int) -> Request:
    template, version = template_and_version(workspace_id, body.template, body.version)
    tpl = load_version(version)
    variables, overrides = fold(tpl, body.variables, body.layers, body.modifications)
    return Request(template, version, tpl, variables, overrides, format_of(body.format),
                   body.size, body.scale, body.quality, body.transparent)


@operation(bp, "POST", "/renders", summary="Render a template", tag="renders", scope="render",
           doc_body=RenderBody, responses={201: RenderOut, 200: RenderOut, 202: RenderOut},
           errors=(400, 401, 403, 404, 413, 415, 422, 429))
def create_render():
    """Synchronous: ``201`` with the new render, or ``200`` with ``cached: true`` when the same
    request was rendered before (answered from storage, not counted against the quota). Give
    data as ``variables``, Placid-style ``layers`` or Bannerbear-style ``modifications``."""
    principal = authenticate()
    repeat = repeated_render(principal.workspace_id)
    if repeat is not None:
        return repeat
    body = parse_body(RenderBody)  # validated here, after the cheap check for a repeat
    req = _request(body, principal.workspace_id)
    if body.webhook_url and not body.async_:
        raise ApiError(400, "invalid_request", "webhook_url: only for async renders (a "
                       "synchronous answer already is the result)")
    if body.async_:
        snap, cached = enqueue(req, workspace_id=principal.workspace_id,
                               api_key_id=principal.key_id, metadata=body.metadata,
                               webhook_url=body.webhook_url and check_target(
                                   body.webhook_url, "webhook_url"))
    else:
        snap, cached = perform(req, workspace_id=principal.workspace_id,
                               api_key_id=principal.key_id, metadata=body.metadata)
    if snap["status"] == "completed":
        remember_body(principal.workspace_id, snap["key"], body.metadata)
    status = 200 if cached else 201 if snap["status"] == "completed" else 202
    return render_json(snap, cached=cached, metadata=body.metadata), status


@operation(bp, "GET", "/renders/<int:render_id>", summary="Get a render", tag="renders",
           scope="render", responses={200: RenderOut}, errors=(401, 403, 404))
def get_render(render_id: int):
    row = db.session.get(Render, render_id)
    if row is None or row.workspace_id != current_workspace().id:
        raise not_found("render", render_id)
    return render_json(snapshot(row), cached=False)


@operation(bp, "GET", "/renders", summary="List renders, newest first", tag="renders",
           scope="render", query=RenderListQuery, responses={200: RenderList})
def list_renders(query: RenderListQuery):
    """Newest first with stable ids: works as a Zapier/Make polling trigger."""
    statement = db.select(Render).where(Render.workspace_id == current_workspace().id)
    if query.template is not None:
        statement = statement.where(Render.template_id == query.template)
    if query.status is not None:
        statement = statement.where(Render.status == query.status)
    if query.before is not None:
        statement = statement.where(Render.id < query.before)
    rows = db.session.scalars(statement.order_by(Render.id.desc()).limit(query.limit)).all()
    return {"data": [render_json(snapshot(row), cached=False) for row in rows]}
