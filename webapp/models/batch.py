"""Batches: many renders of one template, done by workers in chunks, merged at the end."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime, utcnow


class Batch(db.Model):
    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"),
                                              index=True)
    template_id: Mapped[int | None] = mapped_column(
        ForeignKey("templates.id", ondelete="SET NULL"))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending|running|completed
    format: Mapped[str] = mapped_column(String(10))
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # size, scale, …
    merge: Mapped[str | None] = mapped_column(String(10), default=None)  # pdf | zip
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    merged_key: Mapped[str | None] = mapped_column(String(64), default=None)
    merge_error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, default=None)
    api_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL"), default=None)
    run_id: Mapped[int | None] = mapped_column(  # a binding's sync renders through a batch
        ForeignKey("sync_runs.id", ondelete="CASCADE"), default=None, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)


class BatchItem(db.Model):
    __tablename__ = "batch_items"
    __table_args__ = (UniqueConstraint("batch_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"),
                                          index=True)
    position: Mapped[int] = mapped_column(Integer)  # 0-based, in the order given
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, default=None)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending|completed|failed
    render_id: Mapped[int | None] = mapped_column(
        ForeignKey("renders.id", ondelete="SET NULL"), default=None)
    key: Mapped[str | None] = mapped_column(String(64), default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # when its outcome reached its sink (a sync's sheet); None until then
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
