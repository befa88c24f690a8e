"""Live banners (SPEC 8): a template bound to a JSON source or to pushed data, served at a
stable URL whose picture follows the data."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime, utcnow
from .binding import new_token


def new_slug() -> str:
    return secrets.token_urlsafe(9).replace("_", "x").replace("-", "y").lower()


class LiveBanner(db.Model):
    __tablename__ = "live_banners"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"),
                                              index=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id", ondelete="CASCADE"))
    version: Mapped[int | None] = mapped_column(Integer, default=None)  # None: the latest
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("sources.id", ondelete="SET NULL"), default=None)
    slug: Mapped[str] = mapped_column(String(64), unique=True, default=new_slug)
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    mapping: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # as given
    format: Mapped[str] = mapped_column(String(10), default="png")
    size: Mapped[str | None] = mapped_column(String(40), default=None)
    refresh_seconds: Mapped[int] = mapped_column(Integer, default=60)
    inbound_token: Mapped[str] = mapped_column(String(64), unique=True, default=new_token)
    # the data the picture shows (from the source or pushed), and where it came from
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    data_origin: Mapped[str | None] = mapped_column(String(10), default=None)  # source | push
    source_digest: Mapped[str | None] = mapped_column(String(64), default=None)
    etag: Mapped[str | None] = mapped_column(String(300), default=None)
    render_key: Mapped[str | None] = mapped_column(String(64), default=None)
    status: Mapped[str] = mapped_column(String(20), default="ok")  # ok | error
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    refreshes: Mapped[int] = mapped_column(Integer, default=0)
    renders: Mapped[int] = mapped_column(Integer, default=0)
    refreshed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    next_refresh_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None,
                                                                index=True)
    api_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
