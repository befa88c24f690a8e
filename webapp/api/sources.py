"""Data sources: ``GET /connector-types``, ``/sources`` (JSON, or multipart with a CSV/XLSX
file), ``/sources/{id}/test``, ``/sources/{id}/rows`` and an uploaded file's download."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request
from sqlalchemy import select

from connectors.base import SourceError
from connectors.csv_file import FORMATS, file_format, store
from connectors.registry import check_config, connector_class, connector_types, split_secrets

from .. import syncs
from ..auth import authenticate
from ..errors import ApiError
from ..extensions import db
from ..models import Source
from ..models.base import iso, utcnow
from ..openapi import operation, parse_body
from ..schemas import (
    ConnectorTypeList,
    RowsOut,
    RowsQuery,
    SourceIn,
    SourceList,
    SourceOut,
    SourceTestOut,
    SourceUpdate,
)
from .common import owned

bp = Blueprint("sources", __name__)
UPLOAD = {"file": "a .csv or .xlsx file: a header row, then one row per picture",
          "name": "the source's name (default: the file's name)",
          "worksheet": "XLSX: the sheet to use (default: the first)",
          "header_row": "the header row's number (default 1)"}


def settings() -> dict[str, Any]:
    return dict(syncs.context(0).settings)


def source_object(source: Source) -> dict[str, Any]:
    public = current_app.config["PUBLIC_URL"].rstrip("/")
    download = (f"{public}/api/v1/sources/{source.id}/file"
                if source.type == "file" else None)
    return SourceOut.model_validate({
        "id": source.id, "type": source.type, "name": source.name, "config": source.config,
        "secrets_set": sorted(source.secrets), "download_url": download,
        "created_at": iso(source.created_at), "updated_at": iso(source.updated_at),
    }).model_dump(mode="json")


def get_source(source_id: int) -> Source:
    return owned(Source, source_id, "source")


@operation(bp, "GET", "/connector-types", summary="Source types and their settings",
           tag="sources", scope="sources", responses={200: ConnectorTypeList})
def list_connector_types():
    """Each type with the JSON Schema of its ``config`` (fields marked ``secret`` are stored
    encrypted and never shown); Google Sheets also gives the address to share sheets with."""
    return {"data": connector_types(settings())}


def _configured(type_: str, config: dict[str, Any]) -> tuple[dict, dict]:
    cls = connector_class(type_, settings())
    check_config(cls, config, settings())
    return split_secrets(cls, config, settings())


@operation(bp, "POST", "/sources", summary="Add a data source", tag="sources",
           scope="sources", doc_body=SourceIn, multipart=UPLOAD, responses={201: SourceOut},
           errors=(400, 401, 403, 413, 415, 422))
def create_source():
    principal = authenticate()
    if request.mimetype == "multipart/form-data":
        source = uploaded_source(principal.workspace_id)
    else:
        body = parse_body(SourceIn)
        config, secrets = _configured(body.type, body.config)
        source = Source(workspace_id=principal.workspace_id, type=body.type, name=body.name,
                        config=config)
        source.secrets = secrets
    db.session.add(source)
    db.session.commit()
    return source_object(source), 201


def uploaded_source(workspace_id: int) -> Source:
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ApiError(400, "invalid_request", "file: a .csv or .xlsx file is required")
    fmt = file_format(upload.filename)
    config: dict[str, Any] = {"filename": upload.filename, "format": fmt}
    for field in ("worksheet", "header_row"):
        if request.form.get(field):
            config[field] = request.form[field]
    if "header_row" in config:
        if not str(config["header_row"]).isdigit() or int(config["header_row"]) < 1:
            raise ApiError(422, "invalid_request", "header_row: a row number (1 or more)")
        config["header_row"] = int(config["header_row"])
    config["file"] = store(current_app.extensions["storage"], upload.read(), fmt)
    source = Source(workspace_id=workspace_id, type="file", config=config,
                    name=request.form.get("name") or upload.filename)
    syncs.connect(source).read()  # an unreadable file is refused now, not at the first sync
    return source


@operation(bp, "GET", "/sources", summary="List data sources", tag="sources",
           scope="sources", responses={200: SourceList})
def list_sources():
    found = db.session.scalars(select(Source).where(
        Source.workspace_id == authenticate().workspace_id).order_by(Source.id.desc())).all()
    return {"data": [source_object(s) for s in found]}


@operation(bp, "GET", "/sources/<int:source_id>", summary="A data source", tag="sources",
           scope="sources", responses={200: SourceOut}, errors=(401, 403, 404))
def get_source_view(source_id: int):
    return source_object(get_source(source_id))


@operation(bp, "PUT", "/sources/<int:source_id>", summary="Change a data source",
           tag="sources", scope="sources", body=SourceUpdate, responses={200: SourceOut},
           errors=(400, 401, 403, 404, 422))
def update_source(source_id: int, body: SourceUpdate):
    source = get_source(source_id)
    if body.name is not None:
        source.name = body.name
    if body.config is not None:
        kept = {k: v for k, v in source.config.items()
                if source.type == "file" and k in ("file", "filename", "format")}
        config, secrets = _configured(source.type, {**kept, **body.config})
        source.config, source.secrets = config, {**source.secrets, **secrets}
    source.updated_at = utcnow()
    db.session.commit()
    return source_object(source)


@operation(bp, "DELETE", "/sources/<int:source_id>", summary="Delete a data source",
           tag="sources", scope="sources", responses={204: None}, errors=(401, 403, 404))
def delete_source(source_id: int):
    """Its bindings are deleted with it; the sheet itself is not touched."""
    db.session.delete(get_source(source_id))
    db.session.commit()
    return Response(status=204)


@operation(bp, "POST", "/sources/<int:source_id>/test", summary="Test a data source",
           tag="sources", scope="sources", responses={200: SourceTestOut},
           errors=(401, 403, 404, 422, 503))
def test_source(source_id: int):
    """Reads the sheet once: its title, the header row's columns and how many rows have data.
    A sheet that is not shared answers 403 with the address to share it with."""
    return syncs.connect(get_source(source_id)).test_connection()


@operation(bp, "GET", "/sources/<int:source_id>/rows", summary="A data source's first rows",
           tag="sources", scope="sources", query=RowsQuery, responses={200: RowsOut},
           errors=(401, 403, 404, 422, 503))
def source_rows(source_id: int, query: RowsQuery):
    table = syncs.connect(get_source(source_id)).read()
    named = [(i, h.strip()) for i, h in enumerate(table.header) if h.strip()]
    rows = [r for r in table.rows if not r.blank][:query.limit]
    return {"columns": [h for _, h in named],
            "rows": [{"row": r.number, "values": {h: r.get(i) for i, h in named}}
                     for r in rows]}


@operation(bp, "GET", "/sources/<int:source_id>/file", summary="Download an uploaded file",
           tag="sources", scope="sources", responses={200: None}, errors=(401, 403, 404))
def download_source(source_id: int):
    """The uploaded CSV or XLSX with its bindings' URL, status and thumbnail cells filled."""
    source = get_source(source_id)
    if source.type != "file":
        raise SourceError("not_a_file", "only uploaded sources have a file to download",
                          status=404)
    fmt = source.config["format"]
    data = current_app.extensions["storage"].get(source.config["file"])
    stem = source.config.get("filename", f"source-{source.id}").rsplit(".", 1)[0]
    return Response(data, mimetype=FORMATS[fmt], headers={
        "Content-Disposition": f'attachment; filename="{stem}.{fmt}"'})
