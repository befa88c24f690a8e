"""Live banners (SPEC 8): ``POST, GET /live``; ``GET, PUT, DELETE /live/{id}``. The pictures
themselves are served outside the API (``webapp/live.py``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response
from sqlalchemy import select

from .. import live
from ..auth import authenticate
from ..extensions import db
from ..models import LiveBanner
from ..openapi import operation
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
    if banner.source_id is not None:
        get_source(banner.source_id)  # 404 for other workspaces' sources
    live.create(banner, body.data)
    return _out(banner), 201


def _format(name: str) -> str:
    return "jpeg" if name == "jpg" else name


def _source_refresh(banner: LiveBanner) -> int:
    if banner.source_id is None:
        return 60
    return int(get_source(banner.source_id).config.get("refresh_seconds") or 60)


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
    live.change(banner, changes)
    return _out(banner)


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
