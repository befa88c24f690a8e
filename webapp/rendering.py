"""Renders for the web app: request shapes to variables and layer values, the render identity,
answers from storage for keys rendered before, and the render itself with the workspace's
assets and fonts and the guarded outbound session."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass
from typing import Any

from flask import Response, current_app, request
from sqlalchemy import bindparam, or_, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import defer
from sqlalchemy.orm.attributes import set_committed_value

import renderer
from connectors.http import GuardedSession, OutboundPolicy
from renderer import Limits, RendererError, Template
from renderer.encode import EXTENSIONS, normalize_format
from renderer.fonts import font_cache_dir, materialize_font
from renderer.key import referenced_names

from .errors import ApiError, not_found
from .extensions import db
from .models import Asset, Render, TemplateVersion
from .models import Template as TemplateRow
from .models.base import iso, utcnow
from .models.render import storage_name
from .rawsql import RawStatement, transaction
from .storage import LocalStorage, NotFound, Storage, StorageError
from .usage import counted, quota_exceeded, recently_refused, release, reserve

log = logging.getLogger(__name__)

# request field -> layer property, by layer type (Placid's and Bannerbear's names, and ours)
FIELD_MAP = {
    "text": {"text": "text", "color": "color", "text_color": "color", "font": "font",
             "font_family": "font", "font_size": "size"},
    "image": {"image": "src", "image_url": "src", "src": "src"},
    "rect": {"color": "fill", "background": "fill", "background_color": "fill",
             "fill": "fill", "border_color": "stroke", "border_width": "stroke_width"},
    "ellipse": {"color": "fill", "background": "fill", "background_color": "fill",
                "fill": "fill", "border_color": "stroke", "border_width": "stroke_width"},
    "qr": {"data": "data", "text": "data", "value": "data", "color": "color",
           "background": "background"},
}
COMMON_FIELDS = {"hide": "visible", "visible": "visible", "opacity": "opacity", "x": "x",
                 "y": "y", "width": "width", "height": "height", "rotation": "rotation"}


@dataclass(frozen=True)
class Request:
    """A render request after the three shapes were folded into one."""

    template: TemplateRow
    version: TemplateVersion
    tpl: Template
    variables: dict[str, Any]
    overrides: dict[str, dict[str, Any]]
    format: str
    size: str | None
    scale: float
    quality: int | None
    transparent: bool


# ---------------------------------------------------------------- templates

_templates_lock = threading.Lock()


def app_cache(name: str) -> OrderedDict:
    """A cache of the current app's. Row ids and render keys only mean something within one
    database, and one process may serve several apps (the tests make one per test)."""
    return current_app.extensions.setdefault(f"rendering.{name}", OrderedDict())


def recent(name: str, key: Hashable, seconds: float, load: Callable[[], Any]) -> Any:
    """``load()``'s value for ``key``, kept in ``app_cache(name)`` for ``seconds`` (lookups on
    every public request: a change reaches each process within that time)."""
    cache = app_cache(name)
    now = time.monotonic()
    hit = cache.get(key)
    if hit is not None and now - hit[0] < seconds:
        return hit[1]
    value = load()
    if len(cache) > 10_000:
        cache.clear()
    cache[key] = (now, value)
    return value


def limits() -> Limits:
    config = current_app.config
    return Limits(max_canvas=config["MAX_CANVAS"], max_layers=config["MAX_LAYERS"],
                  max_image_bytes=config["MAX_IMAGE_BYTES"],
                  max_image_pixels=config["MAX_IMAGE_PIXELS"])


def load_version(version: TemplateVersion) -> Template:
    """The validated template of a stored version (immutable, so cached by its row id)."""
    templates: OrderedDict[int, Template] = app_cache("templates")
    with _templates_lock:
        tpl = templates.get(version.id)
        if tpl is not None:
            templates.move_to_end(version.id)
            return tpl
    content = db.session.scalar(select(TemplateVersion.content).where(
        TemplateVersion.id == version.id))  # the row may be detached with its content deferred
    tpl = renderer.load_template(content, limits=limits())
    with _templates_lock:
        templates[version.id] = tpl
        while len(templates) > 512:
            templates.popitem(last=False)
    return tpl


HEAD_SECONDS = 1.0  # another process sees a template's new version within this time


def forget_template(template_id: int) -> None:
    """After a save or a delete in this process: the next render reads the template again."""
    heads = app_cache("heads")
    for key in [k for k in heads if k[0] == template_id]:
        heads.pop(key, None)
    app_cache("bodies").clear()


# ---------------------------------------------------------------- repeated requests

MAX_REMEMBERED_BODY = 16 * 1024


def repeated_render(workspace_id: int) -> Response | None:
    """The answer to a byte-identical repeat of a render request answered within the last
    second (``200``, ``cached``), without validating, folding and keying the body again, and
    serialized once. Within that second the template's version and assets are the same as for
    any other request (template heads and asset rows are kept just as long), and a change in
    this process forgets the memo at once."""
    raw = request.get_data(cache=True)
    if not request.is_json or not raw or len(raw) > MAX_REMEMBERED_BODY:
        return None
    bodies = app_cache("bodies")
    hit = bodies.get((workspace_id, raw))
    if hit is None or time.monotonic() - hit[0] >= HEAD_SECONDS:
        return None
    when, key, metadata, answer = hit
    if answer is None:
        snap = find_completed(workspace_id, key)
        if snap is None:
            return None
        answer = current_app.json.response(
            render_object(snap, cached=True, metadata=metadata)).get_data()
        bodies[(workspace_id, raw)] = (when, key, metadata, answer)
    return current_app.response_class(answer, status=200, mimetype="application/json")


def remember_body(workspace_id: int, key: str, metadata: Any) -> None:
    raw = request.get_data(cache=True)
    if len(raw) > MAX_REMEMBERED_BODY:
        return
    bodies = app_cache("bodies")
    bodies[(workspace_id, raw)] = (time.monotonic(), key, metadata, None)
    while len(bodies) > 10_000:
        bodies.popitem(last=False)


def template_and_version(workspace_id: int, template_id: int,
                         number: int | None) -> tuple[TemplateRow, TemplateVersion]:
    """The template and the version a render uses: one query, then kept for a second so that
    a burst of requests for one template does not ask the database each time."""
    now = time.monotonic()
    heads = app_cache("heads")  # (template id, version) -> (when, template, version)
    cached = heads.get((template_id, number))
    if cached is not None and now - cached[0] < HEAD_SECONDS:
        template, version = cached[1], cached[2]
    else:
        template, version = _query_head(workspace_id, template_id, number)
        if len(heads) > 10_000:
            heads.clear()
        heads[(template_id, number)] = (now, template, version)
    if template.workspace_id != workspace_id or template.deleted_at is not None:
        raise not_found("template", template_id)
    return template, version


def _query_head(workspace_id: int, template_id: int,
                number: int | None) -> tuple[TemplateRow, TemplateVersion]:
    wanted = number if number is not None else TemplateRow.current_version
    found = db.session.execute(
        select(TemplateRow, TemplateVersion)
        .join(TemplateVersion, (TemplateVersion.template_id == TemplateRow.id)
              & (TemplateVersion.version == wanted))
        .options(defer(TemplateVersion.content))
        .where(TemplateRow.id == template_id)).first()
    if found is None:
        template = get_template(workspace_id, template_id)  # says which of the two is missing
        get_version(template, number)
        raise not_found("template", template_id)
    db.session.expunge(found[0])  # kept across requests: detached, fully loaded
    db.session.expunge(found[1])
    return found[0], found[1]


def get_template(workspace_id: int, template_id: int) -> TemplateRow:
    row = db.session.get(TemplateRow, template_id)
    if row is None or row.workspace_id != workspace_id or row.deleted_at is not None:
        raise not_found("template", template_id)
    return row


def get_version(template: TemplateRow, number: int | None) -> TemplateVersion:
    number = number or template.current_version
    version = db.session.scalar(select(TemplateVersion).where(
        TemplateVersion.template_id == template.id, TemplateVersion.version == number))
    if version is None:
        raise ApiError(404, "version_not_found",
                       f"template {template.id} has no version {number}")
    return version


# ---------------------------------------------------------------- request shapes

def fold(tpl: Template, variables: Mapping | None, layers: Mapping | None,
         modifications: list | None) -> tuple[dict, dict]:
    """``variables``, Placid's ``layers`` and Bannerbear's ``modifications`` to variables and
    per-layer property values. A name that is no layer but a variable the template uses sets
    the variable; any other name is a mistake (a misspelt layer) and says so."""
    values = dict(variables or {})
    overrides: dict[str, dict[str, Any]] = {}
    changes = [(name, dict(fields)) for name, fields in (layers or {}).items()]
    changes += [(m.name, m.model_extra or {}) for m in (modifications or [])]
    by_name = {layer.name: layer for layer in tpl.layers}
    for name, fields in changes:
        layer = by_name.get(name)
        if layer is not None:
            overrides.setdefault(name, {}).update(_layer_fields(layer, fields))
        elif name in tpl.variables or (len(fields) == 1 and name in referenced_names(tpl)):
            values[name] = _variable_value(fields)
        else:
            raise ApiError(422, "unknown_layer", f"the template has no layer named {name!r}",
                           details={"path": f"layers.{name}"})
    return values, overrides


def _variable_value(fields: Mapping[str, Any]) -> Any:
    for field in ("value", "text", "image_url", "image", "color"):
        if field in fields:
            return fields[field]
    return next(iter(fields.values()), None)


def _layer_fields(layer, fields: Mapping[str, Any]) -> dict[str, Any]:
    names = {**COMMON_FIELDS, **FIELD_MAP[layer.type]}
    props = {}
    for field, value in fields.items():
        prop = names.get(field, field)  # our own property names work as they are
        props[prop] = (not value) if field == "hide" else value
    return props


# ---------------------------------------------------------------- answering

def snapshot(row: Any) -> dict[str, Any]:
    """What answering needs of a render row. A completed render never changes, so its snapshot
    can be kept and served without the database."""
    return {"id": row.id, "workspace_id": row.workspace_id, "key": row.key,
            "status": row.status, "format": row.format, "width": row.width,
            "height": row.height, "template": row.template_id, "version": row.version,
            "warnings": row.warnings or [], "error": row.error, "metadata": row.meta,
            "created_at": iso(row.created_at), "completed_at": iso(row.completed_at)}


def render_object(snap: dict[str, Any], *, cached: bool, metadata: Any = None) -> dict[str, Any]:
    public = current_app.config["PUBLIC_URL"].rstrip("/")
    done = snap["status"] == "completed"
    body = {k: v for k, v in snap.items() if k != "workspace_id"}
    body["url"] = f"{public}/r/{snap['key']}.{EXTENSIONS[snap['format']]}" if done else None
    body["cached"] = cached
    if metadata is not None:
        body["metadata"] = metadata
    return {name: body[name] for name in RENDER_FIELDS}


RENDER_FIELDS = ("id", "key", "status", "url", "format", "width", "height", "cached",
                 "template", "version", "warnings", "error", "metadata", "created_at",
                 "completed_at")


def key_of(req: Request, digests: Mapping[str, str] | None = None) -> str:
    return renderer.render_key(
        req.tpl, req.variables, format=req.format, size=req.size, scale=req.scale,
        quality=req.quality, transparent=req.transparent, template_id=req.template.id,
        version=req.version.version, overrides=req.overrides, limits=limits(),
        asset_digests=digests)


def asset_rows(workspace_id: int, names: set[str]) -> dict[str, Any]:
    """The workspace's fonts and the named assets (name -> row of name, sha256, kind, family,
    weight), in one query kept for a second like template heads; an upload in this process
    forgets it at once."""
    cache = app_cache("assets")  # (workspace, names) -> (when, rows)
    key = (workspace_id, frozenset(names))
    hit = cache.get(key)
    now = time.monotonic()
    if hit is not None and now - hit[0] < HEAD_SECONDS:
        return hit[1]
    found = db.session.execute(select(
        Asset.name, Asset.sha256, Asset.kind, Asset.family, Asset.weight).where(
        Asset.workspace_id == workspace_id,
        or_(Asset.kind == "font", Asset.name.in_(sorted(names))))).all()
    rows = {row.name: row for row in found}
    if len(cache) > 10_000:
        cache.clear()
    cache[key] = (now, rows)
    return rows


def asset_digests(rows: Mapping[str, Any], names: set[str]) -> dict[str, str]:
    """What each asset name points at now: part of the render key, so a re-uploaded picture is
    rendered anew rather than answered from the cache."""
    return {name: rows[name].sha256 for name in sorted(names) if name in rows}


def forget_assets(workspace_id: int) -> None:
    """After an upload in this process: keys use the new digests at once."""
    cache = app_cache("assets")
    for key in [k for k in cache if k[0] == workspace_id]:
        cache.pop(key, None)
    app_cache("bodies").clear()


# built once: this lookup runs for every render request that misses the in-process cache
_COMPLETED_ROWS = (select(Render.id, Render.workspace_id, Render.key, Render.status,
                          Render.format, Render.width, Render.height, Render.template_id,
                          Render.version, Render.warnings, Render.error, Render.meta,
                          Render.created_at, Render.completed_at, Render.size_bytes)
                   .where(Render.workspace_id == bindparam("ws"), Render.status == "completed"))
_COMPLETED = _COMPLETED_ROWS.where(Render.key == bindparam("key")).order_by(Render.id).limit(1)


def find_completed(workspace_id: int, key: str, fmt: str | None = None) -> dict[str, Any] | None:
    """The completed render of ``key`` whose file is in storage, if any. Snapshots of those
    this app has seen are kept by key (app_cache "completed"). Given the format, a key whose
    file is not in a local storage is new without asking the database."""
    snap = app_cache("completed").get(key)
    if snap is not None and snap["workspace_id"] == workspace_id:
        return snap
    if fmt is not None and _surely_missing(storage_name(key, fmt)):
        return None
    row = db.session.execute(_COMPLETED, {"key": key, "ws": workspace_id}).first()
    if row is None:
        return None
    if not _whole(row):
        return None
    return _remember(snapshot(row))


def _surely_missing(name: str) -> bool:
    """Whether a local storage has no such file (asking a remote one costs more than asking
    the database)."""
    return _store_is_local() and current_app.extensions["storage"].size(name) is None


def _whole(row: Any) -> bool:
    """Whether the render's file is in storage as recorded (if not, it is rendered again)."""
    size = current_app.extensions["storage"].size(storage_name(row.key, row.format))
    return size is not None and (row.size_bytes is None or size == row.size_bytes)


def _remember(snap: dict[str, Any]) -> dict[str, Any]:
    completed = app_cache("completed")
    completed[snap["key"]] = snap
    while len(completed) > 100_000:
        completed.popitem(last=False)
    return snap


@dataclass(frozen=True)
class Keyed:
    """A request with its key and the asset rows and digests that went into it."""

    key: str
    rows: Mapping[str, Any]
    digests: Mapping[str, str]


def keyed(req: Request, workspace_id: int) -> Keyed:
    names = asset_names(req.tpl, req.variables, req.overrides)
    rows = asset_rows(workspace_id, names)  # the workspace's fonts too, even with no names
    digests = asset_digests(rows, names)
    return Keyed(key_of(req, digests), rows, digests)


def perform(req: Request, *, workspace_id: int, api_key_id: int | None,
            metadata: Any, wait: bool = False) -> tuple[dict[str, Any], bool]:
    """The render for ``req``: from storage when its key was rendered before (cached, free),
    else rendered now, stored and counted. Returns (snapshot, cached). Past SYNC_TIMEOUT the
    snapshot is still 'rendering': the render goes on and completes its row itself — unless
    ``wait`` (callers that must have the picture: live banners, experiment variants)."""
    k = keyed(req, workspace_id)
    existing = find_completed(workspace_id, k.key, req.format)
    if existing is not None:
        return existing, True
    row = Render(workspace_id=workspace_id, template_id=req.template.id,
                 version=req.version.version, key=k.key, format=req.format, status="rendering",
                 meta=metadata, api_key_id=api_key_id)
    pending = _render_within_limit(row, req, k, wait=wait)
    if pending is not None:
        return pending, False  # still rendering: the caller answers 202
    return _remember(snapshot(row)), False


_renders_pool: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _renders_pool
    if _renders_pool is None:
        _renders_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="render")
    return _renders_pool


def _render_within_limit(row: Render, req: Request, k: Keyed, *,
                         wait: bool = False) -> dict[str, Any] | None:
    """Render and record ``row``'s request, waiting at most SYNC_TIMEOUT seconds (0: no
    limit); past that, the render goes on in this process and completes its row itself, and
    the snapshot of the row, still 'rendering', is returned for a 202 (SPEC 6). None once the
    row is recorded.

    The picture is drawn and its file stored, while the completed row is inserted; once the
    file is in place the same transaction counts the render against the quota and commits: a
    row never points at a missing file, nothing is answered before it is counted, and a
    process killed mid-render leaves nothing behind. (With a remote storage the row waits for
    the file: no write is held open during an upload.) When the quota is used up the
    transaction is refused and the request answers 429 (the stored file stays: the same bytes
    any later render of that key writes, and no row points at it). A workspace refused in the
    last seconds reserves before it renders, so a client over its quota cannot keep the
    server rendering for nothing.

    Where the render runs: a render thread, so that one outlasting the limit can be answered
    while it goes on — or this thread, when nothing can make it outlast the limit (see
    ``_render_here``)."""
    app = current_app._get_current_object()
    reserved = recently_refused(row.workspace_id)
    if reserved:
        reserve(row.workspace_id, record=row)  # a process killed mid-render leaves it to sweep
    limit = None if wait else current_app.config["SYNC_TIMEOUT"] or None
    started = time.monotonic()
    here = _render_here(req, row.workspace_id, k, limit)
    if here is not None:
        rendered, stored = here
    else:
        rendered = Future()
        stored = _pool().submit(_render_and_store, app, req, row.workspace_id, k, rendered)
        left = None if limit is None else max(0.0, limit - (time.monotonic() - started))
        if not futures_wait([rendered], left).done:  # (a render may raise TimeoutError itself)
            if not reserved:
                reserve(row.workspace_id, record=row)  # 429 here drops the render when it ends
            row_id = row.id
            stored.add_done_callback(lambda _: _finish_later(app, row_id, rendered, stored))
            return snapshot(row)
    try:
        result = rendered.result()
        if reserved or not _store_is_local():
            stored.result()  # (no write is held open while a remote store is slow)
    except Exception as exc:
        (give_up if reserved else _fail)(row, _as_renderer_error(exc))
        raise
    if reserved:
        _mark_completed(row, result)
    else:
        _insert_counted(row, result, stored)
    return None


# A render runs in the request's thread when renders of its kind took at most this share of the
# sync limit lately
INLINE_SHARE = 0.05
PACE_KEPT = 8  # renders of a kind remembered


def _render_here(req: Request, workspace_id: int, k: Keyed,
                 limit: float | None) -> tuple[Future, Future] | None:
    """Render in this thread when nothing can make the render outlast ``limit``: there is no
    limit, or the storage is local and the last renders of its kind in this process (template
    version, format, size, scale) all took at most INLINE_SHARE of it and fetched nothing from
    the network. A render that is about to fetch stops and returns None, to start again in a
    render thread: the network can take as long as the limit. (Handing a render to a thread and
    back costs about 0.3 ms of a 6 ms card.) What this does not bound: a render of a quick
    kind whose data makes it many times slower (the sizes of canvases, layers and images are
    bounded by the renderer's limits) completes before it is answered. The (rendered, stored)
    futures, done; None when not rendered."""
    if limit is not None:
        if not _store_is_local():  # (reading assets from a bucket can take any time)
            return None
        bound = limit * INLINE_SHARE
        last = app_cache("pace").get(_kind(req))
        if not last or any(fetched or seconds > bound for seconds, fetched in last):
            return None
    rendered: Future[renderer.Rendered] = Future()
    stored: Future[None] = Future()
    try:
        _draw_and_store(req, workspace_id, k, rendered, offload=limit is not None)
    except _Offload:
        return None
    except Exception as exc:
        stored.set_exception(exc)
    else:
        stored.set_result(None)
    return rendered, stored


def _render_and_store(app, req: Request, workspace_id: int, k: Keyed,
                      rendered: Future[renderer.Rendered]) -> None:
    """The render thread (see ``_draw_and_store``)."""
    with app.app_context():
        _draw_and_store(req, workspace_id, k, rendered)


def _draw_and_store(req: Request, workspace_id: int, k: Keyed,
                    rendered: Future[renderer.Rendered], *, offload: bool = False) -> None:
    """Draw, hand the picture to ``rendered`` (its row is recorded meanwhile), store the file;
    the render's pace is noted for ``_render_here``. With ``offload`` a fetch from the network
    stops the render (``_Offload``)."""
    fetch = _Fetch(outbound().fetch, offload)
    started = time.perf_counter()
    try:
        result = run_renderer(req, workspace_id, k.rows, k.digests, fetch=fetch)
    except BaseException as exc:
        if offload and fetch.used:  # (a library may have caught the _Offload and failed)
            raise _Offload from None
        _note_pace(req, time.perf_counter() - started, fetch.used)
        rendered.set_exception(exc)
        raise
    _note_pace(req, time.perf_counter() - started, fetch.used)
    rendered.set_result(result)
    store_result(k.key, req.format, result, waited_for=True)


class _Offload(BaseException):  # (not an Exception: the renderer turns those into its errors)
    """A render in the request's thread is about to wait for the network."""


class _Fetch:
    """The outbound fetch of one render, noting whether it was called; with ``offload`` a call
    raises ``_Offload`` instead of fetching."""

    def __init__(self, fetch: Callable[[str], bytes], offload: bool):
        self.fetch, self.offload, self.used = fetch, offload, False

    def __call__(self, url: str) -> bytes:
        self.used = True
        if self.offload:
            raise _Offload
        return self.fetch(url)


def _kind(req: Request) -> tuple:
    return req.version.id, req.format, req.size, req.scale


def _note_pace(req: Request, seconds: float, fetched: bool) -> None:
    paces = app_cache("pace")
    if len(paces) > 10_000:
        paces.clear()
    kind = _kind(req)
    paces[kind] = (paces.get(kind, ()) + ((seconds, fetched),))[-PACE_KEPT:]  # (a new tuple:
    # other threads read it without a lock)


def _finish_later(app, row_id: int, rendered: Future, stored: Future) -> None:
    """A render that outlasted the sync limit completes (or fails) its row when it ends."""
    with app.app_context():
        row = db.session.get(Render, row_id)
        try:
            result = rendered.result()
            stored.result()
        except Exception as exc:  # recorded on the row; nobody is waiting for this answer
            give_up(row, _as_renderer_error(exc))
            log.exception("render %s failed after the sync limit", row_id)
            return
        _mark_completed(row, result)
        _remember(snapshot(row))


def _insert_counted(row: Render, result: renderer.Rendered, stored: Future) -> None:
    """Insert the new ``row`` completed while its file is stored (a local file: a fraction of a
    millisecond), then count it and commit; ``quota_exceeded`` when the quota is used up. The
    count comes last, so the workspace's usage row is locked only for the commit. The
    statements run in a transaction of their own, without the ORM session, which would cost
    more than the rest of the transaction (see ``rawsql``)."""
    row.created_at = row.created_at or utcnow()
    params = _completion(None, result, utcnow())
    for name, param in COMPLETED_FIELDS.items():
        setattr(row, name, params[param])
    try:
        with transaction() as tx:
            row.id = _INSERT_COMPLETED.first(_columns(row), tx)[0]
            stored.result()
            if not counted(row.workspace_id, 1, tx):
                raise quota_exceeded(row.workspace_id)
    except BaseException as exc:
        row.id = None  # rolled back: the row is gone
        if stored.done() and stored.exception() is exc:  # the file could not be stored
            _fail(row, _as_renderer_error(exc))
        raise
    _announce(row, "render.completed")


def _store_is_local() -> bool:
    return isinstance(current_app.extensions["storage"], LocalStorage)


def _columns(row: Render) -> dict[str, Any]:
    return {column.key: getattr(row, attribute) for attribute, column in _RENDER_COLUMNS.items()}


def _render_row(row: Render, req: Request, k: Keyed) -> None:
    """Render into ``row`` (its quota already reserved); see ``_record_outcome``."""
    _record_outcome(row, lambda: run_renderer(req, row.workspace_id, k.rows, k.digests))


def _record_outcome(row: Render, produce) -> None:
    """Complete ``row`` with what ``produce()`` renders (stored, then recorded); see
    ``_produce`` for failures."""
    _complete(row, _produce(row, produce))


def _produce(row: Render, produce) -> renderer.Rendered:
    """What ``produce()`` renders for ``row``; a failure fails the row and gives its quota
    back, and is re-raised once recorded. Only a process that dies leaves the row 'rendering',
    for the scheduler's sweep (which gives the quota back once)."""
    try:
        return produce()
    except Exception as exc:
        give_up(row, _as_renderer_error(exc))
        raise


def _as_renderer_error(exc: Exception) -> RendererError:
    if isinstance(exc, StorageError):  # (its message names the server's folders: not kept)
        return RendererError(f"the picture could not be stored ({exc.name})", code=exc.code)
    return exc if isinstance(exc, RendererError) else RendererError(
        f"the render failed unexpectedly ({exc.__class__.__name__})", code="internal_error")


# ---------------------------------------------------------------- many at once (batches)

def new_row(req: Request, key: str, *, workspace_id: int, api_key_id: int | None,
            metadata: Any) -> Render:
    """The row of a render about to be made (stored with its reservation)."""
    return Render(workspace_id=workspace_id, template_id=req.template.id,
                  version=req.version.version, key=key, format=req.format, status="rendering",
                  meta=metadata, api_key_id=api_key_id)


def find_completed_many(workspace_id: int, keys: set[str]) -> dict[str, dict[str, Any]]:
    """``find_completed`` for several keys, with one query for those not seen before."""
    found = {key: snap for key in keys
             if (snap := app_cache("completed").get(key)) is not None
             and snap["workspace_id"] == workspace_id}
    wanted = sorted(keys - found.keys())
    if not wanted:
        return found
    rows = db.session.execute(_COMPLETED_ROWS.where(Render.key.in_(wanted))
                              .order_by(Render.id.desc()), {"ws": workspace_id}).all()
    for row in rows:  # oldest last, so the oldest of a key's completed renders wins
        if _whole(row):
            found[row.key] = _remember(snapshot(row))
    return found


def render_reserved(row: Render, req: Request, k: Keyed) -> renderer.Rendered:
    """Render into reserved ``row``; a failure fails the row and gives its quota back."""
    return _produce(row, lambda: run_renderer(req, row.workspace_id, k.rows, k.digests))


_RENDERS = Render.__table__
_RENDER_COLUMNS = {attr.key: attr.columns[0] for attr in sa_inspect(Render).column_attrs
                   if attr.key != "id"}
_INSERT_COMPLETED = RawStatement(_RENDERS.insert().returning(_RENDERS.c.id),
                                 columns=[column.key for column in _RENDER_COLUMNS.values()])
_COMPLETE = (_RENDERS.update().where(_RENDERS.c.id == bindparam("row_id"))
             .values(status=bindparam("status"), width=bindparam("w"), height=bindparam("h"),
                     size_bytes=bindparam("n"), warnings=bindparam("warn"),
                     completed_at=bindparam("at")))


def complete_many(done: list[tuple[dict[str, Any], renderer.Rendered]]) -> list[dict[str, Any]]:
    """Complete the rows (snapshots of reserved rows) whose files ``store_result`` stored, in
    the current transaction, which the caller commits before ``announce``: a row never points
    at a missing file. Returns the completed snapshots."""
    now = utcnow()
    snaps, params = [], []
    for snap, result in done:
        params.append(_completion(snap["id"], result, now))
        snaps.append({**snap, "status": "completed", "width": result.width,
                      "height": result.height, "warnings": result.warnings,
                      "completed_at": iso(now)})
    if params:
        db.session.execute(_COMPLETE, params)
    return snaps


def announce(snaps: list[dict[str, Any]]) -> None:
    """After the commit of ``complete_many``: remember the renders and tell the hooks."""
    from .webhooks import emit, subscribed_events

    for snap in snaps:
        _remember(snap)
        if "render.completed" in subscribed_events(snap["workspace_id"]):  # most: nobody
            emit(snap["workspace_id"], "render.completed", render_object(snap, cached=False),
                 template_id=snap["template"])


def give_up(row: Render, exc: RendererError) -> None:
    release(row.workspace_id)
    _fail(row, exc)


# ---------------------------------------------------------------- in the background

def params_of(req: Request, webhook_url: str | None = None) -> dict[str, Any]:
    params = {"variables": req.variables, "overrides": req.overrides, "size": req.size,
              "scale": req.scale, "quality": req.quality, "transparent": req.transparent}
    return {**params, "webhook_url": webhook_url} if webhook_url else params


def find_pending(workspace_id: int, key: str) -> Render | None:
    return db.session.scalar(select(Render).where(
        Render.key == key, Render.workspace_id == workspace_id,
        Render.status.in_(("pending", "rendering"))).order_by(Render.id).limit(1))


def enqueue(req: Request, *, workspace_id: int, api_key_id: int | None,
            metadata: Any, webhook_url: str | None = None) -> tuple[dict[str, Any], bool]:
    """An ``async`` render: answered from storage when done before, joined to a pending render
    of the same key, or recorded as pending and queued for a worker."""
    from .queues import RENDERS, require
    from .tasks.renders import queue_render

    k = keyed(req, workspace_id)
    existing = find_completed(workspace_id, k.key, req.format)
    if existing is not None:
        return existing, True
    pending = find_pending(workspace_id, k.key)
    if pending is not None:
        return snapshot(pending), False
    require(RENDERS, "async renders")  # a render is only recorded when it can be queued
    row = Render(workspace_id=workspace_id, template_id=req.template.id,
                 version=req.version.version, key=k.key, format=req.format, status="pending",
                 meta=metadata, api_key_id=api_key_id, params=params_of(req, webhook_url))
    reserve(workspace_id, record=row)
    try:
        queue_render(row.id)
    except Exception as exc:  # Redis refused: nothing is left pending that no one will run
        release(workspace_id)
        _fail(row, RendererError(f"could not queue the render: {exc}", code="queue_unavailable"))
        raise ApiError(503, "queue_unavailable", "async renders are not available right now "
                       "(the queue cannot be reached)") from None
    return snapshot(row), False


def complete_pending(render_id: int) -> str:
    """The worker's side: render a pending render from its recorded parameters."""
    row = db.session.get(Render, render_id)
    if row is None or row.status in ("completed", "failed"):
        return "nothing to do"
    version = db.session.scalar(select(TemplateVersion).where(
        TemplateVersion.template_id == row.template_id,
        TemplateVersion.version == row.version))
    if version is None:
        release(row.workspace_id)
        _fail(row, RendererError("its template was deleted", code="template_not_found"))
        return "failed"
    req = _request_of(row, version)
    row.status = "rendering"
    db.session.commit()
    try:
        _render_row(row, req, keyed(req, row.workspace_id))
    except RendererError:
        return "failed"  # recorded on the render: retrying cannot help
    _remember(snapshot(row))
    return "completed"


def _request_of(row: Render, version: TemplateVersion) -> Request:
    params = row.params or {}
    return stored_request(version.template, version, params.get("variables", {}),
                          params.get("overrides", {}), row.format, params)


def stored_request(template: TemplateRow, version: TemplateVersion, variables: dict,
                   overrides: dict, fmt: str, options: Mapping[str, Any]) -> Request:
    """A request rebuilt from what a background render or a batch kept of it."""
    return Request(template, version, load_version(version), variables, overrides, fmt,
                   options.get("size"), options.get("scale", 1), options.get("quality"),
                   options.get("transparent", False))


def run_renderer(req: Request, workspace_id: int, rows: Mapping[str, Any],
                 digests: Mapping[str, str], *,
                 fetch: Callable[[str], bytes] | None = None) -> renderer.Rendered:
    assets = WorkspaceAssets(workspace_id, rows)
    return renderer.render(
        req.tpl, req.variables, format=req.format, size=req.size, scale=req.scale,
        quality=req.quality, transparent=req.transparent, fetch=fetch or outbound().fetch,
        assets=assets, fonts=assets.fonts(), limits=limits(), template_id=req.template.id,
        version=req.version.version, overrides=req.overrides, asset_digests=digests)


def _complete(row: Render, result: renderer.Rendered) -> None:
    """Store the bytes first, then record the row: a row never points at a missing file."""
    store_result(row.key, row.format, result)
    _mark_completed(row, result)


def _mark_completed(row: Render, result: renderer.Rendered) -> None:
    params = _completion(row.id, result, utcnow())
    db.session.execute(_COMPLETE, params)  # one statement: the unit of work costs more
    db.session.commit()
    for name, param in COMPLETED_FIELDS.items():
        set_committed_value(row, name, params[param])
    _announce(row, "render.completed")


def store_result(key: str, fmt: str, result: renderer.Rendered, *, waited_for: bool = False,
                 storage: Storage | None = None) -> None:
    """A render's file, stored before its row is completed. ``storage``: the app's, for a
    thread without an app context (a batch's recording thread)."""
    # not durable yet: the storage trusts the file only until a machine crash, unless its
    # background fsync completed (a lost render is made again; see LocalStorage)
    (storage or current_app.extensions["storage"]).put(
        storage_name(key, fmt), result.data, content_type=result.mime, durable=False,
        waited_for=waited_for)


COMPLETED_FIELDS = {"status": "status", "width": "w", "height": "h", "size_bytes": "n",
                    "warnings": "warn", "completed_at": "at"}


def _completion(row_id: int, result: renderer.Rendered, now: dt.datetime) -> dict[str, Any]:
    return {"row_id": row_id, "status": "completed", "w": result.width, "h": result.height,
            "n": len(result.data), "warn": result.warnings, "at": now}


def _fail(row: Render, exc: RendererError) -> None:
    row.status, row.completed_at = "failed", utcnow()
    row.error = {"code": exc.code, "message": str(exc), "path": exc.path}
    db.session.add(row)
    db.session.commit()
    _announce(row, "render.failed")


def _announce(row: Render, event: str) -> None:
    from .webhooks import emit, subscribed_events

    webhook_url = (row.params or {}).get("webhook_url")
    if webhook_url or event in subscribed_events(row.workspace_id):  # most renders: nobody
        emit(row.workspace_id, event, render_object(snapshot(row), cached=False),
             template_id=row.template_id, webhook_url=webhook_url)


def outbound() -> GuardedSession:
    session = current_app.extensions.get("outbound")
    if session is None:
        config = current_app.config
        policy = OutboundPolicy.from_config(config["OUTBOUND_ALLOWLIST"],
                                            max_bytes=config["MAX_IMAGE_BYTES"],
                                            timeout=config["OUTBOUND_TIMEOUT"])
        session = current_app.extensions["outbound"] = GuardedSession(policy)
    return session


def format_of(name: str) -> str:
    try:
        return normalize_format(name)
    except RendererError as exc:
        raise ApiError(400, "unsupported_format", exc.message) from None


# ---------------------------------------------------------------- workspace assets and fonts

def asset_names(tpl: Template, *values: Any) -> set[str]:
    """The ``asset:`` names a render may read: in the template and in the request's data."""
    return _names_in(tpl.source, tpl.digest) | _names_in(list(values), None)


_template_names: dict[str, set[str]] = {}


def _names_in(value: Any, digest: str | None) -> set[str]:
    if digest is not None and digest in _template_names:
        return _template_names[digest]
    names: set[str] = set()
    stack: list[Any] = [value]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if value.startswith("asset:"):
                names.add(value[6:])
        elif isinstance(value, Mapping):
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
    if digest is not None:
        if len(_template_names) > 4096:
            _template_names.clear()
        _template_names[digest] = names
    return names


class WorkspaceAssets:
    """``asset:<name>`` for one workspace, read from storage and stamped by content digest,
    from the rows ``asset_rows`` found (a name only an expression produced is looked up)."""

    def __init__(self, workspace_id: int, rows: Mapping[str, Any]):
        self.workspace_id = workspace_id
        self._rows: dict[str, Any] = dict(rows)
        self._fonts = [row for row in rows.values() if row.kind == "font"]

    def _row(self, name: str):
        if name not in self._rows:  # a name only an expression produced
            self._rows[name] = db.session.execute(select(
                Asset.name, Asset.sha256, Asset.kind, Asset.family, Asset.weight).where(
                Asset.workspace_id == self.workspace_id, Asset.name == name)).first()
        return self._rows[name]

    def __call__(self, name: str) -> bytes:
        row = self._row(name)
        if row is None:
            raise renderer.ResourceError(f"no asset named {name!r} in this workspace "
                                         f"(upload it with POST /api/v1/assets)")
        try:
            return current_app.extensions["storage"].get(
                f"assets/{self.workspace_id}/{row.sha256}")
        except NotFound:
            raise renderer.ResourceError(f"the file of asset {name!r} is missing") from None

    def stamp(self, name: str) -> Hashable | None:
        row = self._row(name)
        return None if row is None else ("workspace", self.workspace_id, name, row.sha256)

    def fonts(self) -> dict[str, dict[int, str]]:
        """The workspace's uploaded fonts by family and weight, as local files."""
        fonts: dict[str, dict[int, str]] = {}
        for row in self._fonts:
            if row.family:
                fonts.setdefault(row.family, {})[row.weight or 400] = font_file(
                    self.workspace_id, row.sha256)
        return fonts


def font_file(workspace_id: int, sha: str) -> str:
    """materialize_font names its files by the upload's digest, so a warm machine finds the
    file without reading storage; another machine fetches it once."""
    cached = font_cache_dir() / f"{sha[:32]}.otf"
    if cached.exists():
        return str(cached)
    data = current_app.extensions["storage"].get(f"assets/{workspace_id}/{sha}")
    return materialize_font(data, path="fonts")
