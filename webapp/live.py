"""Live banners (SPEC 8): ``GET /live/<slug>.<ext>`` answers the picture of the banner's data as
of at most one refresh interval ago, and ``POST /live/<slug>/data`` pushes data.

A visitor never waits on the source: workers refresh each banner in the background (a job that
queues its own next run on RQ's scheduler; the scheduler's sweep restarts a chain that broke),
and a request only looks up the banner's current render key and serves that stored file. A
refresh re-renders only when the resolved variables change (the render key moves), so the same
data keeps the same key and the same file; a failing source keeps the last good picture and
records its error on the banner. Countdown GIFs change key with each step, so a refresh
re-renders them even when the data did not change: email countdown timers stay current.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, current_app, request
from sqlalchemy import select
from sqlalchemy.orm.attributes import flag_modified

from connectors.base import SourceError
from connectors.json_http import JsonHttpSource, finite, flatten
from renderer import RendererError
from renderer.encode import EXTENSIONS
from renderer.key import referenced_names

from .auth import require
from .errors import ApiError
from .extensions import db, limiter
from .mapping import normalise
from .models import LiveBanner, Source
from .models.base import iso, utcnow
from .models.render import storage_name
from .public import EXTENSION_FORMAT, _stored
from .rendering import (
    Request,
    app_cache,
    fold,
    keyed,
    load_version,
    perform,
    recent,
    render_object,
    template_and_version,
)

log = logging.getLogger(__name__)
bp = Blueprint("live", __name__)
LOOKUP_SECONDS = 1.0  # a change of picture reaches every process within this


# ---------------------------------------------------------------- serving


@dataclass(frozen=True)
class Showing:
    """What answering a banner request needs, kept in each process for LOOKUP_SECONDS."""

    id: int
    key: str | None
    format: str
    refresh: int


def showing(slug: str) -> Showing | None:
    return recent("live", slug, LOOKUP_SECONDS, lambda: _showing(slug))


def _showing(slug: str) -> Showing | None:
    row = db.session.execute(select(
        LiveBanner.id, LiveBanner.render_key, LiveBanner.format, LiveBanner.refresh_seconds)
        .where(LiveBanner.slug == slug)).first()
    return Showing(row.id, row.render_key, row.format, row.refresh_seconds) if row else None


@bp.get("/live/<slug>.<ext>")
def live_picture(slug: str, ext: str):
    """The banner's current picture; browsers and CDNs may keep it for one refresh interval."""
    found = showing(slug)
    if found is None:
        raise ApiError(404, "live_banner_not_found", f"no live banner is called {slug!r}")
    if EXTENSION_FORMAT.get(ext.lower()) != found.format:
        raise ApiError(404, "live_banner_not_found", f"live banner {slug!r} is served as "
                       f".{EXTENSIONS[found.format]}, not .{ext}")
    if found.key is None:
        raise ApiError(404, "live_banner_empty", f"live banner {slug!r} has no picture yet: "
                       "push data to it or wait for its first refresh")
    etag = f'"{found.key}"'
    if etag in request.headers.get("If-None-Match", ""):
        response = Response(status=304)
    else:
        response = _stored(storage_name(found.key, found.format), found.format)
    response.headers["Cache-Control"] = f"public, max-age={found.refresh}"
    response.headers["ETag"] = etag
    return response


@bp.post("/live/<slug>/data")
@limiter.limit(lambda: current_app.config["PUBLIC_RATE_LIMIT"])
def push_data(slug: str):
    """Data pushed by its owner (an API key with the ``render`` scope): rendered at once."""
    principal = require("render")
    banner = db.session.scalar(select(LiveBanner).where(LiveBanner.slug == slug))
    if banner is None or banner.workspace_id != principal.workspace_id:
        raise ApiError(404, "live_banner_not_found", f"no live banner is called {slug!r}")
    body = request.get_json(silent=True) if request.mimetype == "application/json" else \
        request.form.to_dict() or None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "send the banner's data as a JSON object")
    snap = push(banner, body)
    return {**banner_object(banner), "render": render_object(snap, cached=False)}


# ---------------------------------------------------------------- data → picture


def variable_names(tpl) -> list[str]:
    return [*tpl.variables, *sorted(referenced_names(tpl))]


def resolve(names: list[str], mapping: dict[str, str], data: dict[str, Any]) -> dict[str, Any]:
    """Template variables from the data: as the mapping says, else by normalised name (the
    same auto-mapping as sheet columns). A mapped key the data lacks is an error naming it."""
    by_name = {normalise(key): key for key in data}
    variables: dict[str, Any] = {}
    for variable, key in (mapping or {}).items():
        if key not in data:
            shown = ", ".join(list(data)[:15]) or "none"
            raise SourceError("mapping_missing", f"mapping.{variable}: the data has no key "
                              f"{key!r} (its keys: {shown})", status=422,
                              details={"path": f"mapping.{variable}"})
        variables[variable] = data[key]
    for name in names:
        if name not in variables and normalise(name) in by_name:
            variables[name] = data[by_name[normalise(name)]]
    return variables


def _request(banner: LiveBanner, data: dict[str, Any]) -> Request:
    template, version = template_and_version(banner.workspace_id, banner.template_id,
                                             banner.version)
    tpl = load_version(version)
    variables, overrides = fold(tpl, resolve(variable_names(tpl), banner.mapping, data),
                                None, None)
    return Request(template, version, tpl, variables, overrides, banner.format, banner.size,
                   1, None, False)


def show(banner: LiveBanner, data: dict[str, Any], *,
         answer: bool = False) -> dict[str, Any] | None:
    """Point the banner at the picture of ``data``, rendering only if its key is new. Returns
    the render's snapshot, or None when the key did not move (unless ``answer``)."""
    req = _request(banner, data)
    key = keyed(req, banner.workspace_id).key
    if key == banner.render_key and not answer:
        flag_modified(banner, "render_key")  # written with the data, see below
        return None
    snap, cached = perform(req, workspace_id=banner.workspace_id, api_key_id=None,
                           metadata={"live_banner": banner.id}, wait=True)
    if snap["key"] != banner.render_key:
        banner.changed_at = utcnow()
        banner.renders += 0 if cached else 1
    banner.render_key = snap["key"]
    flag_modified(banner, "render_key")  # written with the data even if this process saw it
    return snap


def push(banner: LiveBanner, data: dict[str, Any]) -> dict[str, Any]:
    """Pushed data replaces the banner's data until the source's answer changes."""
    _check_finite(data)
    flat = flatten(data)
    snap = show(banner, flat, answer=True)
    banner.data, banner.data_origin = flat, "push"
    banner.status, banner.error, banner.updated_at = "ok", None, utcnow()
    db.session.commit()
    forget(banner.slug)
    return snap


def _check_finite(data: Any) -> None:
    if not finite(data):
        raise ApiError(400, "invalid_json", "the data holds NaN or Infinity, which JSON does "
                       "not have; send numbers, strings or null")


def forget(slug: str) -> None:
    app_cache("live").pop(slug, None)


# ---------------------------------------------------------------- refreshing


def connector_of(banner: LiveBanner) -> JsonHttpSource:
    from .syncs import connect

    source = db.session.get(Source, banner.source_id)
    connector = connect(source)
    if not isinstance(connector, JsonHttpSource):
        raise SourceError("unsupported_source", f"source {source.id} is a {connector.name} "
                          "source; live banners follow JSON/HTTP sources", status=422,
                          details={"path": "source"})
    return connector


def refresh_now(banner: LiveBanner) -> dict[str, Any] | None:
    """Ask the source (with the last ETag), and show what it answers. Raises what went wrong."""
    connector = connector_of(banner)
    fetched = connector.fetch(banner.etag if banner.data is not None else None)
    if fetched.not_modified or (fetched.digest == banner.source_digest
                                and banner.data is not None):
        # nothing new at the source: pushed data stays; a countdown may still move on
        return show(banner, banner.data)
    data = connector.one_object(fetched.data)
    snap = show(banner, data)
    banner.data, banner.data_origin = data, "source"
    banner.etag, banner.source_digest = fetched.etag, fetched.digest
    return snap


def refresh(banner_id: int) -> str:
    """The worker's refresh of one banner; errors are recorded, the last picture stays."""
    banner = db.session.get(LiveBanner, banner_id, populate_existing=True)
    if banner is None or banner.source_id is None:
        return "nothing to refresh"
    now = utcnow()
    if banner.next_refresh_at is not None and banner.next_refresh_at > now + dt.timedelta(
            seconds=1):
        return "not due"  # refreshed meanwhile (a push, or a second chain)
    try:
        refresh_now(banner)
        banner.status, banner.error = "ok", None
        outcome = "refreshed"
    except Exception as exc:  # recorded on the banner; the chain of refreshes goes on
        if not isinstance(exc, (SourceError, RendererError, ApiError)):
            log.exception("live banner %s: the refresh failed", banner_id)
            exc = SourceError("internal_error", "the refresh failed unexpectedly "
                              f"({exc.__class__.__name__}); it is tried again")
        db.session.rollback()
        banner = db.session.get(LiveBanner, banner_id, populate_existing=True)
        if banner is None:
            return "deleted meanwhile"
        banner.status, banner.error = "error", error_of(exc)
        outcome = f"error: {banner.error['message']}"
    banner.refreshes += 1
    banner.refreshed_at = utcnow()
    banner.next_refresh_at = banner.refreshed_at + dt.timedelta(seconds=banner.refresh_seconds)
    db.session.commit()
    forget(banner.slug)
    schedule(banner)
    return outcome


def error_of(exc: Exception) -> dict[str, Any]:
    code = getattr(exc, "code", "error")
    message = getattr(exc, "message", None) or str(exc)
    return {"code": code, "message": message, "at": iso(utcnow())}


def schedule(banner: LiveBanner) -> None:
    from .tasks.live import queue_refresh

    if banner.source_id is not None and banner.next_refresh_at is not None:
        queue_refresh(banner.id, banner.next_refresh_at)


def overdue(grace_seconds: float = 10.0) -> list[tuple[int, dt.datetime]]:
    """Banners whose refresh chain broke (their job was lost): the scheduler queues them."""
    cutoff = utcnow() - dt.timedelta(seconds=grace_seconds)
    rows = db.session.execute(select(LiveBanner.id, LiveBanner.next_refresh_at).where(
        LiveBanner.source_id.is_not(None), LiveBanner.next_refresh_at < cutoff))
    return [(row.id, row.next_refresh_at) for row in rows]


# ---------------------------------------------------------------- creating and changing


def create(banner: LiveBanner, data: dict[str, Any] | None) -> None:
    """Show the source's data (or ``data``) and save the new banner; on any error nothing
    stays (rendering commits its render row, and the banner with it: it goes again)."""
    template_and_version(banner.workspace_id, banner.template_id, banner.version)  # 404s
    _check_finite(data)
    if banner.source_id is not None:
        from .queues import LIVE
        from .queues import require as require_queue

        require_queue(LIVE, "live banners that follow a source")  # workers refresh them
    db.session.add(banner)
    db.session.flush()
    try:
        if banner.source_id is not None:
            refresh_now(banner)
        else:
            flat = flatten(data or {})
            show(banner, flat)
            banner.data, banner.data_origin = flat, "push" if data else None
    except Exception:
        db.session.rollback()
        _delete(banner.id)
        raise
    saved(banner)


def change(banner: LiveBanner, changes: dict[str, Any]) -> None:
    """Apply ``changes`` (column -> value) and show the data again with them; if that fails,
    the banner is as it was."""
    template_and_version(banner.workspace_id, changes.get("template_id", banner.template_id),
                         changes.get("version", banner.version))  # 404s before any change
    before = {name: getattr(banner, name) for name in [*changes, "etag"]}
    for name, value in changes.items():
        setattr(banner, name, value)
    try:
        if banner.source_id is not None:
            banner.etag = None  # read the whole answer again
            refresh_now(banner)
        else:
            show(banner, banner.data or {})
    except Exception:
        _restore(banner.id, before)
        raise
    saved(banner)


def saved(banner: LiveBanner) -> None:
    """Commit a banner that shows its data now, and start its refreshes."""
    now = utcnow()
    banner.status, banner.error, banner.updated_at = "ok", None, now
    banner.refreshed_at = now
    banner.next_refresh_at = (now + dt.timedelta(seconds=banner.refresh_seconds)
                              if banner.source_id is not None else None)
    db.session.commit()
    forget(banner.slug)
    schedule(banner)


def _delete(banner_id: int) -> None:
    leftover = db.session.get(LiveBanner, banner_id)
    if leftover is not None:
        db.session.delete(leftover)
        db.session.commit()


def _restore(banner_id: int, before: dict[str, Any]) -> None:
    db.session.rollback()
    banner = db.session.get(LiveBanner, banner_id, populate_existing=True)
    for name, value in before.items():
        setattr(banner, name, value)
    db.session.commit()


# ---------------------------------------------------------------- the API's view


def banner_object(banner: LiveBanner) -> dict[str, Any]:
    public = current_app.config["PUBLIC_URL"].rstrip("/")
    ext = EXTENSIONS[banner.format]
    current = f"{public}/r/{banner.render_key}.{ext}" if banner.render_key else None
    return {"id": banner.id, "slug": banner.slug, "name": banner.name,
            "url": f"{public}/live/{banner.slug}.{ext}",
            "data_url": f"{public}/live/{banner.slug}/data",
            "inbound_url": f"{public}/hooks/in/{banner.inbound_token}",
            "template": banner.template_id, "version": banner.version,
            "source": banner.source_id, "mapping": banner.mapping or {},
            "format": banner.format, "size": banner.size,
            "refresh_seconds": banner.refresh_seconds, "status": banner.status,
            "error": banner.error, "data": banner.data, "data_origin": banner.data_origin,
            "render_key": banner.render_key, "render_url": current,
            "refreshes": banner.refreshes, "renders": banner.renders,
            "refreshed_at": iso(banner.refreshed_at), "changed_at": iso(banner.changed_at),
            "next_refresh_at": iso(banner.next_refresh_at),
            "created_at": iso(banner.created_at), "updated_at": iso(banner.updated_at)}
