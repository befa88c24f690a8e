"""Batches: one template, many rows. Items are rendered by workers in chunks (a chunk keeps the
worker's caches warm and is one job; several workers share a batch), each item fails alone with
its reason, and the last item to finish queues the merge into one PDF or a ZIP."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import current_app
from sqlalchemy import insert, select, update

from renderer import RendererError
from renderer.encode import EXTENSIONS

from .errors import ApiError
from .extensions import db
from .models import Batch, BatchItem, Render
from .models.base import iso, utcnow
from .models.render import storage_name
from .rendering import (
    fold,
    format_of,
    load_version,
    record_rendered,
    render_unrecorded,
    stored_request,
    template_and_version,
)

CHUNK = 25  # items per job


def create(workspace_id: int, api_key_id: int | None, *, template_id: int,
           version: int | None, items: list[dict[str, Any]], options: dict[str, Any],
           merge: str | None, metadata: Any, run_id: int | None = None,
           limit: int | None = None) -> Batch:
    limit = limit or current_app.config["MAX_BATCH_ITEMS"]
    if not items:
        raise ApiError(400, "empty_batch", "items: a batch needs at least one item")
    if len(items) > limit:
        raise ApiError(413, "batch_too_large",
                       f"items: {len(items):,} items; the limit is {limit:,} per batch")
    template, head = template_and_version(workspace_id, template_id, version)
    fmt = "pdf" if merge == "pdf" else format_of(options.pop("format", "png"))
    batch = Batch(workspace_id=workspace_id, template_id=template.id, version=head.version,
                  format=fmt, options=options, merge=merge, total=len(items), meta=metadata,
                  api_key_id=api_key_id, run_id=run_id)
    db.session.add(batch)
    db.session.flush()
    db.session.execute(insert(BatchItem), [
        {"batch_id": batch.id, "position": i, "variables": item.get("variables") or {},
         "meta": item.get("metadata")} for i, item in enumerate(items)])
    db.session.commit()
    _queue_chunks(batch)
    return batch


def _queue_chunks(batch: Batch) -> None:
    from .tasks.batches import queue_chunk

    for start in range(0, batch.total, CHUNK):
        queue_chunk(batch.id, start)


def render_chunk(batch_id: int, start: int) -> int:
    """Render the pending items of one chunk; returns how many were finished here."""
    batch = db.session.get(Batch, batch_id)
    if batch is None or batch.status == "completed":
        return 0
    if batch.status == "pending":
        batch.status = "running"
        db.session.commit()
    items = db.session.scalars(select(BatchItem).where(
        BatchItem.batch_id == batch_id, BatchItem.position >= start,
        BatchItem.position < start + CHUNK, BatchItem.status == "pending")
        .order_by(BatchItem.position)).all()
    app = current_app._get_current_object()
    # one thread stores and records each item while this one renders the next: the file's
    # fsync and the database work overlap the rendering instead of following it
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="record") as recorder:
        futures = [_render_item(batch, item, recorder, app) for item in items]
    for future in futures:
        if future is not None:
            future.result()  # a failed recording fails the job: RQ retries the chunk
    if batch.run_id is not None:
        from .syncs import after_chunk

        after_chunk(batch.run_id)
    return len(items)


def _render_item(batch: Batch, item: BatchItem, recorder: ThreadPoolExecutor, app):
    """Render one item; returns the future of its recording, or None when it is settled."""
    try:
        template, version = template_and_version(batch.workspace_id, batch.template_id,
                                                 batch.version)
        variables, overrides = fold(load_version(version), item.variables, None, None)
        req = stored_request(template, version, variables, overrides, batch.format,
                             batch.options or {})
        done, row_id, result = render_unrecorded(req, workspace_id=batch.workspace_id,
                                                 api_key_id=batch.api_key_id,
                                                 metadata=item.meta)
    except (RendererError, ApiError) as exc:  # this item's own problem: it fails alone
        db.session.rollback()
        finish_item(batch, item, error=_error_of(exc))
        return None
    if done is not None:
        finish_item(batch, item, render_id=done["id"], key=done["key"])
        return None
    return recorder.submit(_record_item, app, batch.id, item.id, row_id, result)


def _record_item(app, batch_id: int, item_id: int, row_id: int, result) -> None:
    with app.app_context():
        snap = record_rendered(row_id, result)
        finish_item(db.session.get(Batch, batch_id), db.session.get(BatchItem, item_id),
                    render_id=snap["id"], key=snap["key"])


def _error_of(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, RendererError):
        return {"code": exc.code, "message": str(exc), "path": exc.path}
    return {"code": exc.code, "message": exc.message, "path": exc.details.get("path")}


def finish_item(batch: Batch, item: BatchItem, *, render_id: int | None = None,
                 key: str | None = None, error: dict | None = None) -> None:
    """The item's outcome and the batch's count in one transaction; whoever counts the last
    item queues the merge."""
    item.status = "failed" if error else "completed"
    item.render_id, item.key, item.error = render_id, key, error
    column = Batch.failed if error else Batch.done
    counts = db.session.execute(
        update(Batch).where(Batch.id == batch.id).values({column: column + 1})
        .returning(Batch.done, Batch.failed, Batch.total)).one()
    db.session.commit()
    if counts.done + counts.failed == counts.total:
        from .tasks.batches import queue_finish

        queue_finish(batch.id)


def finish(batch_id: int) -> str:
    """Merge what was rendered (PDF pages or a ZIP, in item order) and complete the batch."""
    batch = db.session.get(Batch, batch_id)
    if batch is None or batch.status == "completed":
        return "nothing to do"
    if batch.run_id is not None:  # a sync's: its last write round completes it
        from .syncs import batch_finished

        batch_finished(batch.run_id)
        return "written back"
    if batch.merge:
        try:
            batch.merged_key = _merge(batch)
        except RendererError as exc:
            batch.merge_error = {"code": exc.code, "message": str(exc)}
    batch.status, batch.completed_at = "completed", utcnow()
    db.session.commit()
    from .webhooks import emit

    emit(batch.workspace_id, "batch.completed", batch_object(batch),
         template_id=batch.template_id, webhook_url=(batch.options or {}).get("webhook_url"))
    return "completed"


def _merge(batch: Batch) -> str | None:
    rows = db.session.execute(select(BatchItem.position, BatchItem.meta, Render.key,
                                     Render.format)
                              .join(Render, Render.id == BatchItem.render_id)
                              .where(BatchItem.batch_id == batch.id,
                                     BatchItem.status == "completed")
                              .order_by(BatchItem.position)).all()
    if not rows:
        return None
    key = hashlib.sha256(json.dumps([batch.merge, [r.key for r in rows]]).encode()).hexdigest()
    storage = current_app.extensions["storage"]
    files = [storage.get(storage_name(r.key, r.format)) for r in rows]
    if batch.merge == "pdf":
        from renderer.pdf import merge_pdfs

        data, fmt, mime = merge_pdfs(files), "pdf", "application/pdf"
    else:
        data, fmt, mime = _zip(rows, files), "zip", "application/zip"
    storage.put(f"renders/{key[:2]}/{key}.{fmt}", data, content_type=mime)
    return key


def _zip(rows, files: list[bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:  # pictures are packed
        for row, data in zip(rows, files, strict=True):
            archive.writestr(f"{row.position + 1:05d}.{EXTENSIONS[row.format]}", data)
    return buffer.getvalue()


def batch_object(batch: Batch, *, items: bool = True) -> dict[str, Any]:
    public = current_app.config["PUBLIC_URL"].rstrip("/")
    merged_ext = {"pdf": "pdf", "zip": "zip"}.get(batch.merge or "")
    return {
        "id": batch.id, "status": batch.status, "template": batch.template_id,
        "version": batch.version, "format": batch.format, "merge": batch.merge,
        "total": batch.total, "done": batch.done, "failed": batch.failed,
        "merged_url": f"{public}/r/{batch.merged_key}.{merged_ext}"
        if batch.merged_key else None,
        "merge_error": batch.merge_error, "metadata": batch.meta,
        "created_at": iso(batch.created_at), "completed_at": iso(batch.completed_at),
        "items": _items(batch, public) if items else None,
    }


def _items(batch: Batch, public: str) -> list[dict[str, Any]]:
    rows = db.session.execute(select(BatchItem, Render.format).outerjoin(
        Render, Render.id == BatchItem.render_id).where(BatchItem.batch_id == batch.id)
        .order_by(BatchItem.position)).all()
    return [{"index": item.position, "status": item.status, "render": item.render_id,
             "url": f"{public}/r/{item.key}.{EXTENSIONS[fmt]}" if item.key else None,
             "error": item.error, "metadata": item.meta} for item, fmt in rows]
