"""Sheet syncs (SPEC 7): read once, render what changed through the batch queue, write the
outputs back in a few batched rounds, each after a fresh read that checks every row still holds
the data it was rendered from.

A row is up to date when its URL cell holds the URL its data renders to now (the render key is
a hash of the mapped cells, the template version, the format and size); every other row with
data is rendered. Rows with the same data share one render. Each write round re-reads the sheet
and writes an outcome to every row that *now* holds the data it came from, so rows inserted,
deleted or sorted meanwhile never get another row's picture. Work is never lost: a round that
fails leaves its items undelivered, and the next sync finds those rows' URL cells stale and
answers them from the render cache.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import func, select, update

from connectors.base import Cell, Connector, Context, SourceError, Table
from connectors.google_api import Backoff
from connectors.registry import open_source
from renderer import RendererError
from renderer.encode import EXTENSIONS
from renderer.key import referenced_names

from .errors import ApiError
from .extensions import db
from .mapping import (
    STATUS_DONE,
    STATUS_QUEUED,
    Columns,
    Plan,
    inputs_plan,
    locate,
    make_plan,
)
from .models import Batch, BatchItem, Binding, Render, Source, SyncRun
from .models.base import iso, utcnow
from .rendering import keyed, load_version, outbound, stored_request, template_and_version

log = logging.getLogger(__name__)
ACTIVE = ("queued", "reading", "rendering")
LEASE = dt.timedelta(minutes=5)  # a write round that takes longer is taken for dead
MAX_STATUS = 300  # characters of an error reason in a status cell


# ---------------------------------------------------------------- connectors


def context(workspace_id: int) -> Context:
    config = current_app.config
    settings = {"sheets_api_url": config["GOOGLE_SHEETS_API_URL"],
                "service_account_info": service_account_info(),
                "oauth_enabled": bool(config.get("GOOGLE_CLIENT_ID")),
                "backoff": Backoff(retries=config["SHEETS_RETRIES"],
                                   base=config["SHEETS_BACKOFF"]),
                "timeout": config["SHEETS_TIMEOUT"],
                "http_policy": outbound().policy,
                "max_source_bytes": config["MAX_SOURCE_BYTES"]}
    from .google_oauth import session_for

    return Context(settings, oauth_session=lambda account: session_for(workspace_id, account),
                   files=current_app.extensions["storage"])


def service_account_info() -> dict[str, Any] | None:
    """The operator's service account key (read once per process)."""
    path = current_app.config.get("GOOGLE_SERVICE_ACCOUNT_FILE")
    if not path:
        return None
    cache = current_app.extensions.setdefault("google.service_account", {})
    if path not in cache:
        cache[path] = json.loads(Path(path).read_text())
    return cache[path]


def connect(source: Source) -> Connector:
    return open_source(source.type, source.config, source.secrets, context(source.workspace_id))


def save_config(source: Source, connector: Connector) -> None:
    """A file source points at its new content after a write."""
    if connector.config != source.config:
        source.config = dict(connector.config)
        source.updated_at = utcnow()


def source_items(source: Source, template_id: int, version: int | None,
                 mapping: dict[str, str]) -> list[dict[str, Any]]:
    """A source's rows as batch items: mapped (and auto-mapped) columns as variables, the row
    number as metadata; blank rows are skipped."""
    _, head = template_and_version(source.workspace_id, template_id, version)
    tpl = load_version(head)
    names = [*tpl.variables, *sorted(referenced_names(tpl))]
    table = connect(source).read()
    _check_size(table)
    columns, _ = locate(inputs_plan(mapping, names, table.header), table)
    if not columns.inputs:
        raise SourceError("nothing_mapped", f"mapping: none of the template's variables "
                          f"({', '.join(names) or 'none'}) matches a column "
                          f"({', '.join(h for h in table.header if h) or 'none'}); map them",
                          details={"path": "mapping"})
    return [{"variables": columns.variables(row), "metadata": {"row": row.number}}
            for row in table.rows if not columns.skipped(row)]


# ---------------------------------------------------------------- triggers


def request_sync(binding: Binding, trigger: str) -> SyncRun:
    """Queue a sync, or return the one already under way."""
    active = db.session.scalar(select(SyncRun).where(
        SyncRun.binding_id == binding.id, SyncRun.status.in_(ACTIVE)).order_by(SyncRun.id))
    if active is not None:
        return active
    run = SyncRun(binding_id=binding.id, trigger=trigger)
    db.session.add(run)
    binding.status = "queued"
    db.session.commit()
    from .tasks.syncs import queue_start

    queue_start(run.id)
    return run


def due_bindings(now: dt.datetime | None = None) -> list[int]:
    now = now or utcnow()
    return list(db.session.scalars(select(Binding.id).where(
        Binding.poll_seconds > 0, Binding.next_poll_at <= now,
        Binding.status.not_in(("queued", "running")))))


def poll(now: dt.datetime | None = None) -> int:
    """The scheduler's round: a sync for every binding whose poll time has come."""
    started = 0
    for binding_id in due_bindings(now):
        binding = db.session.get(Binding, binding_id)
        binding.next_poll_at = utcnow() + dt.timedelta(seconds=binding.poll_seconds)
        request_sync(binding, "poll")
        started += 1
    return started


# ---------------------------------------------------------------- reading and planning


def start(run_id: int) -> str:
    """The worker's first step: read the sheet, decide what to render, queue it."""
    run = db.session.get(SyncRun, run_id)
    if run is None or run.status not in ("queued", "reading"):
        return "nothing to do"
    binding = db.session.get(Binding, run.binding_id)
    run.status, binding.status = "reading", "running"
    db.session.commit()
    connector = None
    try:
        source = db.session.get(Source, binding.source_id)
        connector = connect(source)
        return _plan_and_queue(run, binding, source, connector)
    except (SourceError, ApiError, RendererError) as exc:
        db.session.rollback()
        _fail(run, binding, exc, connector)
        return "failed"


def _plan_and_queue(run: SyncRun, binding: Binding, source: Source,
                    connector: Connector) -> str:
    template, version = template_and_version(binding.workspace_id, binding.template_id, None)
    tpl = load_version(version)
    table = connector.read()
    _check_size(table)
    plan = make_plan(binding, [*tpl.variables, *sorted(referenced_names(tpl))], table.header)
    plan.worksheet = table.worksheet
    columns, missing = locate(plan, table)
    added = connector.add_columns(table, missing) if missing else {}
    columns = with_added(columns, plan, added)
    todo, current, skipped = _changed_rows(binding, template, version, table, columns)
    run.version, run.rows_seen = version.version, len(table.rows)
    run.rows_current, run.rows_skipped = current, skipped
    run.plan = asdict(plan)
    _prepare_sheet(connector, table, columns, added, todo)
    save_config(source, connector)
    run.requests = connector.requests
    if not todo:
        _complete(run, binding)
        return "completed"
    _queue_batch(run, binding, version.version, todo)
    return "rendering"


def _check_size(table: Table) -> None:
    limit = current_app.config["MAX_SYNC_ROWS"]
    if len(table.rows) > limit:
        raise SourceError("sheet_too_large", f"the source has {len(table.rows):,} rows; at "
                          f"most {limit:,} are read (MAX_SYNC_ROWS)", status=413)


def with_added(columns: Columns, plan: Plan, added: dict[str, int]) -> Columns:
    for field, header in (("url", plan.url), ("status", plan.status),
                          ("thumbnail", plan.thumbnail)):
        if header in added:
            setattr(columns, field, added[header])
    return columns


def _changed_rows(binding: Binding, template, version, table: Table,
                  columns: Columns) -> tuple[dict[str, dict[str, Any]], int, int]:
    """Rows to render (one per distinct data: fingerprint -> item), how many are current,
    how many are blank or filtered out."""
    public, ext = _public(), EXTENSIONS[binding.format]
    options = {"size": binding.size}
    todo: dict[str, dict[str, Any]] = {}
    current = skipped = 0
    for row in table.rows:
        if columns.skipped(row):
            skipped += 1
            continue
        variables = columns.variables(row)
        key = _key(binding, template, version, variables, options)
        if key is not None and row.get(columns.url) == f"{public}/r/{key}.{ext}":
            current += 1
            continue
        todo.setdefault(columns.fingerprint(row), {"variables": variables, "rows": []})[
            "rows"].append(row.number)
    return todo, current, skipped


def _key(binding: Binding, template, version, variables, options) -> str | None:
    try:
        req = stored_request(template, version, variables, {}, binding.format, options)
        return keyed(req, binding.workspace_id).key
    except (RendererError, ApiError):
        return None  # rendered anyway: the render says what is wrong with this row


def _prepare_sheet(connector: Connector, table: Table, columns: Columns,
                   added: dict[str, int], todo: dict[str, dict[str, Any]]) -> None:
    """One write before rendering: the new output headers and each queued row's status."""
    cells = [Cell(table.header_row, col, header) for header, col in added.items()]
    if columns.status is not None:
        by_number = {row.number: row for row in table.rows}
        cells += [Cell(n, columns.status, STATUS_QUEUED) for item in todo.values()
                  for n in item["rows"] if by_number[n].get(columns.status) != STATUS_QUEUED]
    if cells:
        connector.write(cells)


def _queue_batch(run: SyncRun, binding: Binding, version: int,
                 todo: dict[str, dict[str, Any]]) -> None:
    from .batches import create

    items = [{"variables": item["variables"], "metadata": {"f": fp, "rows": item["rows"]}}
             for fp, item in todo.items()]
    run.to_render, run.status = len(items), "rendering"
    db.session.commit()
    create(binding.workspace_id, binding.api_key_id, template_id=binding.template_id,
           version=version, items=items, options={"format": binding.format,
                                                  "size": binding.size},
           merge=None, metadata=None, run_id=run.id,
           limit=current_app.config["MAX_SYNC_ROWS"])


def _public() -> str:
    return current_app.config["PUBLIC_URL"].rstrip("/")


# ---------------------------------------------------------------- writing back


def threshold(run: SyncRun) -> int:
    from .batches import CHUNK

    return max(CHUNK, math.ceil(run.to_render / max(1, current_app.config["SYNC_FLUSHES"])))


def after_chunk(run_id: int) -> None:
    """A chunk of the sync's batch finished: write back if enough rows are waiting."""
    try:
        maybe_flush(run_id)
    except Exception:  # a failed write round must not fail (and re-render) the chunk
        log.exception("writing back sync run %s failed", run_id)


def maybe_flush(run_id: int) -> None:
    """Write waiting outcomes back when there are enough of them or the batch is done, one
    writer at a time (a lease on the run); whoever lets go looks once more, so that outcomes
    that finished while the lease was held are not left waiting."""
    while _due(run_id):
        if not _take_lease(run_id):
            return
        try:
            _flush(run_id)
        finally:
            _drop_lease(run_id)


def _due(run_id: int) -> bool:
    run = db.session.get(SyncRun, run_id, populate_existing=True)
    if run.status != "rendering":
        return False
    batch = _batch_of(run_id)
    waiting = _waiting_count(batch.id)
    finished = batch.done + batch.failed == batch.total
    return finished or waiting >= threshold(run)


def _batch_of(run_id: int) -> Batch:
    return db.session.scalar(select(Batch).where(Batch.run_id == run_id)
                             .execution_options(populate_existing=True))


def _waiting_count(batch_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(BatchItem).where(
        BatchItem.batch_id == batch_id, BatchItem.status != "pending",
        BatchItem.delivered_at.is_(None)))


def _take_lease(run_id: int) -> bool:
    now = utcnow()
    taken = db.session.execute(update(SyncRun).where(
        SyncRun.id == run_id, (SyncRun.flushing_until.is_(None)) | (SyncRun.flushing_until < now))
        .values(flushing_until=now + LEASE)).rowcount
    db.session.commit()
    return taken == 1


def _drop_lease(run_id: int) -> None:
    db.session.rollback()
    db.session.execute(update(SyncRun).where(SyncRun.id == run_id).values(flushing_until=None))
    db.session.commit()


def _flush(run_id: int) -> None:
    run = db.session.get(SyncRun, run_id, populate_existing=True)
    binding = db.session.get(Binding, run.binding_id, populate_existing=True)
    batch = _batch_of(run_id)
    finished = batch.done + batch.failed == batch.total
    # another thread or process finished these items: what this session holds may be stale
    items = db.session.scalars(select(BatchItem).where(
        BatchItem.batch_id == batch.id, BatchItem.status != "pending",
        BatchItem.delivered_at.is_(None)).order_by(BatchItem.position)
        .execution_options(populate_existing=True)).all()
    if not finished and len(items) < threshold(run):
        return
    source = db.session.get(Source, binding.source_id)
    connector = connect(source)
    try:
        written = _write_outcomes(connector, run, binding, items) if items else 0
    except SourceError as exc:
        db.session.rollback()
        run.requests += connector.requests
        if finished:
            _fail(run, binding, exc, None)
        else:
            run.error = _error_of(exc)
            db.session.commit()
        return
    now = utcnow()
    for item in items:
        item.delivered_at = now
    run.written += written
    run.requests += connector.requests
    save_config(source, connector)
    db.session.commit()
    if finished:
        _complete(run, binding)


def _write_outcomes(connector: Connector, run: SyncRun, binding: Binding,
                    items: list[BatchItem]) -> int:
    """Re-read, then write each outcome to the rows that hold its data now."""
    plan = Plan(**run.plan)
    connector.known_worksheet = plan.worksheet
    table = connector.reread()
    columns, missing = locate(plan, table)
    if missing:
        raise SourceError("output_column_missing", f"output: column {missing[0]!r} was "
                          "removed from the header row during the sync; the next sync adds "
                          "it again")
    holders = _holders(table, columns)
    cells = []
    ext = EXTENSIONS[binding.format]
    for item in items:
        for row in holders.get(item.meta["f"], []):
            cells += _outcome_cells(item, row, columns, ext)
    connector.write(cells)
    return len(cells)


def _holders(table: Table, columns: Columns) -> dict[str, list]:
    found: dict[str, list] = {}
    for row in table.rows:
        if not columns.skipped(row):
            found.setdefault(columns.fingerprint(row), []).append(row)
    return found


def done_values(columns: Columns, url: str) -> list[tuple[int | None, str, bool]]:
    """(column, value, is a formula) of a rendered row's outputs."""
    return [(columns.url, url, False), (columns.status, STATUS_DONE, False),
            (columns.thumbnail, f'=IMAGE("{url}")', True)]


def _outcome_cells(item: BatchItem, row, columns: Columns, ext: str) -> list[Cell]:
    if item.status == "completed":
        wanted = done_values(columns, f"{_public()}/r/{item.key}.{ext}")
    else:
        reason = (item.error or {}).get("message", "failed")
        wanted = [(columns.url, "", False),
                  (columns.status, f"error: {reason}"[:MAX_STATUS], False),
                  (columns.thumbnail, "", False)]
    return [Cell(row.number, col, value, formula) for col, value, formula in wanted
            if col is not None and (formula or row.get(col) != value)]


# ---------------------------------------------------------------- endings


def _close_batch(run: SyncRun) -> None:
    """Count what the run's batch did and close it (what it rendered stays cached)."""
    batch = db.session.scalar(select(Batch).where(Batch.run_id == run.id))
    if batch is not None:
        run.errors = batch.failed
        run.rendered = _new_renders(batch, run.started_at)
        batch.status, batch.completed_at = "completed", utcnow()


def _complete(run: SyncRun, binding: Binding) -> None:
    _close_batch(run)
    run.status, run.finished_at = "completed", utcnow()
    binding.status, binding.error, binding.last_synced_at = "ok", None, run.finished_at
    _schedule_next(binding)
    db.session.commit()
    _announce(run, binding)


def _new_renders(batch: Batch, since: dt.datetime) -> int:
    return db.session.scalar(select(func.count()).select_from(BatchItem).join(
        Render, Render.id == BatchItem.render_id).where(
        BatchItem.batch_id == batch.id, Render.created_at >= since))


def _fail(run: SyncRun, binding: Binding, exc: Exception, connector: Connector | None) -> None:
    if connector is not None:
        run.requests += connector.requests
    run.status, run.finished_at, run.error = "failed", utcnow(), _error_of(exc)
    _close_batch(run)
    binding.status = "reconnect" if getattr(exc, "reconnect", False) else "error"
    binding.error = run.error
    _schedule_next(binding)
    db.session.commit()
    _announce(run, binding)


def _schedule_next(binding: Binding) -> None:
    if binding.poll_seconds:
        binding.next_poll_at = utcnow() + dt.timedelta(seconds=binding.poll_seconds)


def _error_of(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, SourceError):
        return {"code": exc.code, "message": exc.message, **exc.details}
    if isinstance(exc, ApiError):
        return {"code": exc.code, "message": exc.message}
    return {"code": getattr(exc, "code", "sync_failed"), "message": str(exc)}


def _announce(run: SyncRun, binding: Binding) -> None:
    from .webhooks import emit

    emit(binding.workspace_id, "sync.completed", run_object(run),
         template_id=binding.template_id)


def batch_finished(run_id: int) -> None:
    """The sync's batch rendered its last row: the last write round completes the run."""
    maybe_flush(run_id)


# ---------------------------------------------------------------- objects


def run_object(run: SyncRun) -> dict[str, Any]:
    return {"id": run.id, "binding": run.binding_id, "trigger": run.trigger,
            "status": run.status, "version": run.version, "rows_seen": run.rows_seen,
            "rows_skipped": run.rows_skipped, "rows_current": run.rows_current,
            "to_render": run.to_render, "rendered": run.rendered, "written": run.written,
            "errors": run.errors, "requests": run.requests, "error": run.error,
            "started_at": iso(run.started_at), "finished_at": iso(run.finished_at)}


def binding_object(binding: Binding) -> dict[str, Any]:
    output = {"url_column": "Image", "status_column": None, "thumbnail_column": None,
              **(binding.output or {})}
    return {"id": binding.id, "template": binding.template_id, "source": binding.source_id,
            "mapping": binding.mapping, "output": output, "key_column": binding.key_column,
            "filter_column": binding.filter_column, "format": binding.format,
            "size": binding.size, "poll_seconds": binding.poll_seconds,
            "status": binding.status, "error": binding.error,
            "inbound_url": f"{_public()}/hooks/in/{binding.inbound_token}",
            "last_synced_at": iso(binding.last_synced_at),
            "next_poll_at": iso(binding.next_poll_at),
            "created_at": iso(binding.created_at), "updated_at": iso(binding.updated_at)}

