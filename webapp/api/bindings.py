"""Bindings of a template to a source (SPEC 7): CRUD, ``POST /bindings/{id}/sync`` and the
run log ``GET /bindings/{id}/runs``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response
from sqlalchemy import select

from connectors.base import SourceError
from renderer.key import referenced_names

from .. import syncs
from ..auth import authenticate
from ..errors import ApiError
from ..extensions import db
from ..mapping import make_plan
from ..models import Binding, SyncRun
from ..models.base import utcnow
from ..openapi import operation
from ..queues import SYNCS, require
from ..rendering import load_version, template_and_version
from ..schemas import BindingIn, BindingList, BindingOut, BindingUpdate, RunList, RunOut
from .common import owned
from .sources import get_source

bp = Blueprint("bindings", __name__)
MIN_POLL = 30


def _out(binding: Binding) -> dict[str, Any]:
    return BindingOut.model_validate(syncs.binding_object(binding)).model_dump(mode="json")


def get_binding(binding_id: int) -> Binding:
    return owned(Binding, binding_id, "binding")


def _check(binding: Binding) -> None:
    """Read the sheet's header row once: the mapping must name real columns; variables left
    out are auto-mapped, and the binding keeps the mapping it will use."""
    if binding.poll_seconds and binding.poll_seconds < MIN_POLL:
        raise ApiError(422, "invalid_request", f"poll_seconds: at least {MIN_POLL} (Google "
                       "allows about 60 requests a minute), or 0 for no polling",
                       details={"path": "poll_seconds"})
    template, version = template_and_version(binding.workspace_id, binding.template_id, None)
    tpl = load_version(version)
    source = get_source(binding.source_id)
    connector = syncs.connect(source)
    if not connector.writable:
        raise SourceError("read_only", f"source {source.id} ({connector.name}) cannot be "
                          "written to, so it cannot hold pictures", status=422)
    header = connector.read().header
    plan = make_plan(binding, [*tpl.variables, *sorted(referenced_names(tpl))], header)
    binding.mapping = plan.mapping


@operation(bp, "POST", "/bindings", summary="Bind a template to a source", tag="bindings",
           scope="sources", body=BindingIn, responses={201: BindingOut},
           errors=(400, 401, 403, 404, 422, 503))
def create_binding(body: BindingIn):
    """Checks the mapping against the sheet's header row (one read): a column that does not
    exist, or exists twice, is refused with its name. Omitted variables are auto-mapped."""
    principal = authenticate()
    binding = Binding(workspace_id=principal.workspace_id, template_id=body.template,
                      source_id=body.source, mapping=body.mapping,
                      output=body.output.model_dump(), key_column=body.key_column,
                      filter_column=body.filter_column, format=body.format, size=body.size,
                      poll_seconds=body.poll_seconds, api_key_id=principal.key_id)
    _check(binding)
    _schedule(binding)
    db.session.add(binding)
    db.session.commit()
    return _out(binding), 201


def _schedule(binding: Binding) -> None:
    binding.next_poll_at = (utcnow() + dt.timedelta(seconds=binding.poll_seconds)
                            if binding.poll_seconds else None)


@operation(bp, "GET", "/bindings", summary="List bindings", tag="bindings", scope="sources",
           responses={200: BindingList})
def list_bindings():
    found = db.session.scalars(select(Binding).where(
        Binding.workspace_id == authenticate().workspace_id).order_by(Binding.id.desc())).all()
    return {"data": [_out(b) for b in found]}


@operation(bp, "GET", "/bindings/<int:binding_id>", summary="A binding", tag="bindings",
           scope="sources", responses={200: BindingOut}, errors=(401, 403, 404))
def get_binding_view(binding_id: int):
    return _out(get_binding(binding_id))


@operation(bp, "PUT", "/bindings/<int:binding_id>", summary="Change a binding",
           tag="bindings", scope="sources", body=BindingUpdate, responses={200: BindingOut},
           errors=(400, 401, 403, 404, 422, 503))
def update_binding(binding_id: int, body: BindingUpdate):
    binding = get_binding(binding_id)
    changes = body.model_dump(exclude_unset=True)
    if "template" in changes:
        binding.template_id = changes.pop("template")
    for name, value in changes.items():
        setattr(binding, name, value)
    _check(binding)
    if "poll_seconds" in changes:
        _schedule(binding)
    binding.updated_at = utcnow()
    db.session.commit()
    return _out(binding)


@operation(bp, "DELETE", "/bindings/<int:binding_id>", summary="Delete a binding",
           tag="bindings", scope="sources", responses={204: None}, errors=(401, 403, 404))
def delete_binding(binding_id: int):
    """The sheet keeps what was written to it."""
    db.session.delete(get_binding(binding_id))
    db.session.commit()
    return Response(status=204)


@operation(bp, "POST", "/bindings/<int:binding_id>/sync", summary="Sync now",
           tag="bindings", scope="sources", responses={202: RunOut},
           errors=(401, 403, 404, 503))
def sync_binding(binding_id: int):
    """Queues a sync (or answers the one under way). Follow it with ``GET
    /bindings/{id}/runs``; the sheet's status column shows each row's progress."""
    binding = get_binding(binding_id)
    require(SYNCS, "syncs")
    return RunOut.model_validate(syncs.run_object(
        syncs.request_sync(binding, "manual"))).model_dump(mode="json"), 202


@operation(bp, "GET", "/bindings/<int:binding_id>/runs", summary="A binding's run log",
           tag="bindings", scope="sources", responses={200: RunList}, errors=(401, 403, 404))
def list_runs(binding_id: int):
    """Newest first: rows seen, skipped, up to date, rendered, cells written, errors, the
    requests made to the sheet, and how each run ended."""
    binding = get_binding(binding_id)
    runs = db.session.scalars(select(SyncRun).where(SyncRun.binding_id == binding.id)
                              .order_by(SyncRun.id.desc()).limit(50)).all()
    return {"data": [syncs.run_object(run) for run in runs]}
