"""Template ↔ source bindings (SPEC 7) and the log of their syncs."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime, utcnow


def new_token() -> str:
    return secrets.token_urlsafe(24)


class Binding(db.Model):
    __tablename__ = "bindings"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"),
                                              index=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id", ondelete="CASCADE"))
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    mapping: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # as given
    output: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    key_column: Mapped[str | None] = mapped_column(String(200), default=None)
    filter_column: Mapped[str | None] = mapped_column(String(200), default=None)
    format: Mapped[str] = mapped_column(String(10), default="png")
    size: Mapped[str | None] = mapped_column(String(40), default=None)
    poll_seconds: Mapped[int | None] = mapped_column(Integer, default=60)
    inbound_token: Mapped[str] = mapped_column(String(64), unique=True, default=new_token)
    # idle | queued | running | ok | error | reconnect
    status: Mapped[str] = mapped_column(String(20), default="idle")
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    next_poll_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None,
                                                             index=True)
    last_synced_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    api_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SyncRun(db.Model):
    """One sync of a binding: what it saw, rendered and wrote, and how it ended."""

    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    binding_id: Mapped[int] = mapped_column(ForeignKey("bindings.id", ondelete="CASCADE"),
                                            index=True)
    trigger: Mapped[str] = mapped_column(String(20))  # poll | manual | inbound
    # queued | reading | rendering | completed | failed
    status: Mapped[str] = mapped_column(String(20), default="queued")
    version: Mapped[int | None] = mapped_column(Integer, default=None)
    rows_seen: Mapped[int] = mapped_column(Integer, default=0)
    rows_skipped: Mapped[int] = mapped_column(Integer, default=0)  # blank or filtered out
    rows_current: Mapped[int] = mapped_column(Integer, default=0)  # already up to date
    to_render: Mapped[int] = mapped_column(Integer, default=0)  # distinct rows queued
    rendered: Mapped[int] = mapped_column(Integer, default=0)
    written: Mapped[int] = mapped_column(Integer, default=0)  # cells written
    errors: Mapped[int] = mapped_column(Integer, default=0)  # rows that failed
    requests: Mapped[int] = mapped_column(Integer, default=0)  # calls to the source
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    plan: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)  # columns, etc.
    flushing_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    log: Mapped[str | None] = mapped_column(Text, default=None)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
