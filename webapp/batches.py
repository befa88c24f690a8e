"""Batches: one template, many rows. Items are rendered by workers in chunks (a chunk keeps the
worker's caches warm and is one job; several workers share a batch), each item fails alone with
its reason, and the last item to finish queues the merge into one PDF or a ZIP."""

from __future__ import annotations

import hashlib
import io
import json
import queue
import threading
import time
import zipfile
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, insert, select, update

from renderer import RendererError
from renderer.encode import EXTENSIONS

from .errors import ApiError
from .extensions import db
from .models import Batch, BatchItem, Render
from .models.base import iso, utcnow
from .models.render import storage_name
from .rendering import (
    Keyed,
    Request,
    announce,
    complete_many,
    find_completed_many,
    fold,
    format_of,
    give_up,
    keyed,
    load_version,
    new_row,
    render_reserved,
    snapshot,
    store_result,
    stored_request,
    template_and_version,
)
from .usage import reserve, reserve_many

CHUNK = 25  # items per job
RECORD_EVERY = 0.2  # seconds a finished item may wait to be recorded with the next ones


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
    """Render the pending items of one chunk; returns how many were finished here. Items are
    keyed first: those rendered before are answered from the cache, the others are reserved
    with one statement and rendered one after the other while a second thread stores and
    records them, several at a time."""
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
    with Recorder(current_app._get_current_object(), batch.id) as recorder:
        plans = _plans(batch, items, recorder)
        _render_plans(batch, _reserved(batch, plans, recorder), recorder)
    if batch.run_id is not None:
        from .syncs import after_chunk

        after_chunk(batch.run_id)
    return len(items)


@dataclass
class _Plan:
    """One render of a chunk, and the items it answers (rows with the same data share it)."""

    req: Request
    keyed: Keyed
    items: list[int]
    meta: Any
    row: Render | None = None


def _plans(batch: Batch, items: list[BatchItem], recorder: Recorder) -> list[_Plan]:
    """The chunk's new renders; items that fail alone or were rendered before are recorded."""
    plans: dict[str, _Plan] = {}
    for item in items:
        try:
            req = _request_of(batch, item)
            k = keyed(req, batch.workspace_id)
        except (RendererError, ApiError) as exc:  # this item's own problem: it fails alone
            db.session.rollback()
            recorder.finish([item.id], error=_error_of(exc))
            continue
        if k.key in plans:
            plans[k.key].items.append(item.id)
        else:
            plans[k.key] = _Plan(req, k, [item.id], item.meta)
    done = find_completed_many(batch.workspace_id, set(plans))
    for key, snap in done.items():
        recorder.finish(plans.pop(key).items, render_id=snap["id"], key=key)
    return list(plans.values())


def _request_of(batch: Batch, item: BatchItem) -> Request:
    template, version = template_and_version(batch.workspace_id, batch.template_id,
                                             batch.version)
    variables, overrides = fold(load_version(version), item.variables, None, None)
    return stored_request(template, version, variables, overrides, batch.format,
                          batch.options or {})


def _reserved(batch: Batch, plans: list[_Plan], recorder: Recorder) -> list[_Plan]:
    """The plans whose quota is reserved, with their rows: all with one statement when the
    quota has room for all, else one by one until it is used up (the rest fail)."""
    for plan in plans:
        plan.row = new_row(plan.req, plan.keyed.key, workspace_id=batch.workspace_id,
                           api_key_id=batch.api_key_id, metadata=plan.meta)
    if not plans or reserve_many(batch.workspace_id, [plan.row for plan in plans]):
        return plans
    reserved = []
    for plan in plans:
        try:
            reserve(batch.workspace_id, record=plan.row)
        except ApiError as exc:
            recorder.finish(plan.items, error=_error_of(exc))
            continue
        reserved.append(plan)
    return reserved


def _render_plans(batch: Batch, plans: list[_Plan], recorder: Recorder) -> None:
    for index, plan in enumerate(plans):
        try:
            result = render_reserved(plan.row, plan.req, plan.keyed)
        except RendererError as exc:  # recorded on its render, which gave its quota back
            recorder.finish(plan.items, error=_error_of(exc))
            continue
        except BaseException:  # the job fails and is retried: the rest is not made here
            for rest in plans[index + 1:]:
                give_up(rest.row, RendererError("the batch job stopped before this render",
                                                 code="internal_error"))
            raise
        recorder.complete(plan.items, snapshot(plan.row), result)


class Recorder:
    """A second thread that stores renders and records items while the worker renders the
    next: each file is stored as soon as its render is done, and what piles up within
    RECORD_EVERY is recorded in one transaction (the renders, the items and the batch's
    counts), so that the end of a chunk waits for one transaction only. Whoever counts the
    last item queues the merge. A failed store or recording fails the job (RQ retries the
    chunk: its recorded items are not pending, the others are rendered again)."""

    def __init__(self, app, batch_id: int):
        self.app, self.batch_id = app, batch_id
        self._storage = app.extensions["storage"]
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="record", daemon=True)

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None and exc_info[0] is None:
            raise self._error

    def finish(self, items: list[int], *, render_id: int | None = None, key: str | None = None,
               error: dict | None = None) -> None:
        self._queue.put((items, render_id, key, error, None, None))

    def complete(self, items: list[int], snap: dict[str, Any], result) -> None:
        self._queue.put((items, snap["id"], snap["key"], None, snap, result))

    def _run(self) -> None:
        stop = False
        while not stop:
            group = [self._stored(self._queue.get())]
            deadline = time.monotonic() + RECORD_EVERY
            while group[-1] is not None and len(group) < CHUNK:
                try:
                    group.append(self._stored(
                        self._queue.get(timeout=max(0, deadline - time.monotonic()))))
                except queue.Empty:
                    break
            stop = group[-1] is None
            entries = [entry for entry in group if entry is not None]
            if entries and self._error is None:
                try:
                    with self.app.app_context():
                        self._record(entries)
                except BaseException as exc:  # raised in the worker's thread
                    self._error = exc

    def _stored(self, entry: tuple | None) -> tuple | None:
        if entry is not None and entry[4] is not None and self._error is None:
            try:
                snap = entry[4]
                store_result(snap["key"], snap["format"], entry[5], storage=self._storage)
            except BaseException as exc:  # raised in the worker's thread
                self._error = exc
        return entry

    def _record(self, entries: list[tuple]) -> None:
        snaps = complete_many([(e[4], e[5]) for e in entries if e[4] is not None])
        params = [{"item_id": item, "status": "failed" if error else "completed",
                   "render_id": render_id, "key": key, "error": error}
                  for items, render_id, key, error, _, _ in entries for item in items]
        db.session.execute(_FINISH_ITEM, params)
        failed = sum(1 for p in params if p["error"])
        counts = db.session.execute(
            update(Batch).where(Batch.id == self.batch_id)
            .values(done=Batch.done + len(params) - failed, failed=Batch.failed + failed)
            .returning(Batch.done, Batch.failed, Batch.total)).one()
        db.session.commit()
        announce(snaps)
        if counts.done + counts.failed == counts.total:
            from .tasks.batches import queue_finish

            queue_finish(self.batch_id)


_ITEMS = BatchItem.__table__
_FINISH_ITEM = (_ITEMS.update().where(_ITEMS.c.id == bindparam("item_id"))
                .values(status=bindparam("status"), render_id=bindparam("render_id"),
                        key=bindparam("key"), error=bindparam("error")))


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
