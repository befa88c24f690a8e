"""Live banners (SPEC 8): ``POST, GET /live``; ``GET, PUT, DELETE /live/{id}``. The pictures
themselves are served outside the API (``webapp/live.py``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response
from sqlalchemy import select

from connectors.json_http import flatten

from .. import live
from ..auth import authenticate
from ..extensions import db
from ..models import LiveBanner
from ..models.base import utcnow
from ..openapi import operation
from ..queues import LIVE, require
from ..rendering import template_and_version
from ..schemas import LiveIn, LiveList, LiveOut, LiveUpdate
from .common import owned
from .sources import get_source

bp = Blueprint("live_banners", __name__)
NULLABLE = {"version", "name", "size"}  # null means: the latest version, no name, no size


def _out(banner: LiveBanner) -> dict[str, Any]:
    return LiveOut.model_validate(live.banner_object(banner)).model_dump(mode="json")


def get_banner(banner_id: int) -> LiveBanner:
    return owned(LiveBanner, banner_id, "live_banner")


@operation(bp, "POST", "/live", summary="Create a live banner", tag="live banners",
           scope="sources", body=LiveIn, responses={201: LiveOut},
           errors=(400, 401, 403, 404, 422, 429, 502, 503))
def create_banner(body: LiveIn):
    """Reads the source once and renders its first picture before answering, so a source
    that cannot be read, a ``select`` that finds nothing or a mapping that names a missing key
    is refused here with its reason, and nothing is created."""
    principal = authenticate()
    banner = LiveBanner(workspace_id=principal.workspace_id, template_id=body.template,
                        version=body.version, source_id=body.source, name=body.name,
                        mapping=body.mapping, format=_format(body.format), size=body.size,
                        api_key_id=principal.key_id)
    banner.refresh_seconds = body.refresh_seconds or _source_refresh(banner)
    _first_picture(banner, body.data)
    return _out(banner), 201


def _format(name: str) -> str:
    return "jpeg" if name == "jpg" else name


def _source_refresh(banner: LiveBanner) -> int:
    if banner.source_id is None:
        return 60
    return int(get_source(banner.source_id).config.get("refresh_seconds") or 60)


def _first_picture(banner: LiveBanner, data: dict[str, Any] | None) -> None:
    """Show the source's data (or ``data``) and save the banner; on any error nothing stays."""
    template_and_version(banner.workspace_id, banner.template_id, banner.version)  # 404s
    if banner.source_id is not None:
        get_source(banner.source_id)
        require(LIVE, "live banners")  # workers refresh them
    db.session.add(banner)
    db.session.flush()
    try:
        _show(banner, data)
    except Exception:
        db.session.rollback()
        _discard(banner.id)
        raise
    _saved(banner)


def _show(banner: LiveBanner, data: dict[str, Any] | None) -> None:
    if banner.source_id is not None:
        live.refresh_now(banner)
    else:
        flat = flatten(data or {})
        live.show(banner, flat)
        banner.data, banner.data_origin = flat, "push" if data else None


def _discard(banner_id: int) -> None:
    """Rendering commits its render row; a banner committed with it goes again."""
    leftover = db.session.get(LiveBanner, banner_id)
    if leftover is not None:
        db.session.delete(leftover)
        db.session.commit()


def _saved(banner: LiveBanner) -> None:
    now = utcnow()
    banner.status, banner.error, banner.updated_at = "ok", None, now
    banner.refreshed_at = now
    banner.next_refresh_at = (now + dt.timedelta(seconds=banner.refresh_seconds)
                              if banner.source_id is not None else None)
    db.session.commit()
    live.forget(banner.slug)
    live.schedule(banner)


@operation(bp, "GET", "/live", summary="List live banners", tag="live banners",
           scope="sources", responses={200: LiveList})
def list_banners():
    found = db.session.scalars(select(LiveBanner).where(
        LiveBanner.workspace_id == authenticate().workspace_id)
        .order_by(LiveBanner.id.desc())).all()
    return {"data": [_out(b) for b in found]}


@operation(bp, "GET", "/live/<int:banner_id>", summary="A live banner", tag="live banners",
           scope="sources", responses={200: LiveOut}, errors=(401, 403, 404))
def get_banner_view(banner_id: int):
    """With the data it shows, where that came from, and the last refresh's error if any."""
    return _out(get_banner(banner_id))


@operation(bp, "PUT", "/live/<int:banner_id>", summary="Change a live banner",
           tag="live banners", scope="sources", body=LiveUpdate, responses={200: LiveOut},
           errors=(400, 401, 403, 404, 422, 429, 502, 503))
def update_banner(banner_id: int, body: LiveUpdate):
    """Shows the banner's data again with the new settings (reading the source again)."""
    banner = get_banner(banner_id)
    changes = {name: value for name, value in body.model_dump(exclude_unset=True).items()
               if value is not None or name in NULLABLE}
    if "template" in changes:
        changes["template_id"] = changes.pop("template")
    if "format" in changes:
        changes["format"] = _format(changes["format"])
    template_and_version(banner.workspace_id, changes.get("template_id", banner.template_id),
                         changes.get("version", banner.version))  # 404s before any change
    before = {name: getattr(banner, name) for name in [*changes, "etag"]}
    for name, value in changes.items():
        setattr(banner, name, value)
    try:
        if banner.source_id is not None:
            banner.etag = None  # read the whole answer again
            live.refresh_now(banner)
        else:
            live.show(banner, banner.data or {})
    except Exception:
        _restore(banner.id, before)
        raise
    _saved(banner)
    return _out(banner)


def _restore(banner_id: int, before: dict[str, Any]) -> None:
    """Rendering commits its render row, and the changed settings with it: put them back."""
    db.session.rollback()
    banner = db.session.get(LiveBanner, banner_id, populate_existing=True)
    for name, value in before.items():
        setattr(banner, name, value)
    db.session.commit()


@operation(bp, "DELETE", "/live/<int:banner_id>", summary="Delete a live banner",
           tag="live banners", scope="sources", responses={204: None},
           errors=(401, 403, 404))
def delete_banner(banner_id: int):
    """Its URL answers 404 from then on; pictures already rendered stay under /r/."""
    banner = get_banner(banner_id)
    slug = banner.slug
    db.session.delete(banner)
    db.session.commit()
    live.forget(slug)
    return Response(status=204)
