"""Batches: ``POST /batches`` (JSON items, a data source's rows, or a CSV upload) and
``GET /batches/{id}``."""

from __future__ import annotations

from flask import Blueprint, request

from .. import batches
from ..auth import authenticate
from ..errors import ApiError, not_found
from ..extensions import db
from ..models import Batch
from ..openapi import operation, parse_body, validate
from ..queues import BATCHES, require
from ..rows import DataError, csv_rows
from ..schemas import BatchBody, BatchOut, BatchQuery
from ..syncs import source_items
from ..webhooks import check_target
from .sources import get_source

bp = Blueprint("batches", __name__)
UPLOAD = {"file": "a CSV file: a header row, then one row of variables per item",
          "template": "the template's id", "format": "png, jpeg, webp, avif, gif or pdf",
          "merge": "pdf or zip (optional)"}


def _body() -> BatchBody:
    if request.mimetype != "multipart/form-data":
        return parse_body(BatchBody)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ApiError(400, "invalid_request", "file: a CSV file is required")
    try:
        rows = csv_rows(upload.read().decode("utf-8-sig"))
    except (DataError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_csv", f"file: {exc}") from None
    fields = {k: v for k, v in request.form.items() if k in ("template", "version", "format",
                                                                "merge", "size")}
    return validate(BatchBody, {**fields, "items": [{"variables": row} for row in rows]})


@operation(bp, "POST", "/batches", summary="Render many rows", tag="batches", scope="render",
           doc_body=BatchBody, multipart=UPLOAD, responses={202: BatchOut},
           errors=(400, 401, 403, 404, 413, 415, 422, 503))
def create_batch():
    """Answers 202 at once; workers render the items in chunks. Follow the progress with
    ``GET /batches/{id}``; each item fails alone with its reason."""
    principal = authenticate()
    require(BATCHES, "batches")
    body = _body()
    options = body.model_dump(include={"format", "size", "scale", "quality", "transparent"})
    items = [item.model_dump() for item in body.items]
    if body.source is not None:
        if items:
            raise ApiError(400, "invalid_request", "send items or a source, not both")
        items = source_items(get_source(body.source), body.template, body.version,
                             body.mapping)
    if body.webhook_url:
        options["webhook_url"] = check_target(body.webhook_url, "webhook_url")
    batch = batches.create(principal.workspace_id, principal.key_id,
                           template_id=body.template, version=body.version,
                           items=items, options=options,
                           merge=body.merge, metadata=body.metadata)
    return BatchOut.model_validate(batches.batch_object(batch)).model_dump(mode="json"), 202


@operation(bp, "GET", "/batches/<int:batch_id>", summary="A batch's progress", tag="batches",
           scope="render", query=BatchQuery, responses={200: BatchOut},
           errors=(400, 401, 403, 404))
def get_batch(batch_id: int, query: BatchQuery):
    batch = db.session.get(Batch, batch_id)
    if batch is None or batch.workspace_id != authenticate().workspace_id:
        raise not_found("batch", batch_id)
    body = batches.batch_object(batch, items=query.items)
    return BatchOut.model_validate(body).model_dump(mode="json")
