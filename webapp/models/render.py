"""Renders: one row per rendered request, found again by its key (SPEC 5)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime, utcnow

STATUSES = ("pending", "rendering", "completed", "failed")


class Render(db.Model):
    __tablename__ = "renders"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"),
                                              index=True)
    template_id: Mapped[int | None] = mapped_column(
        ForeignKey("templates.id", ondelete="SET NULL"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    format: Mapped[str] = mapped_column(String(10))
    width: Mapped[int | None] = mapped_column(Integer, default=None)
    height: Mapped[int | None] = mapped_column(Integer, default=None)
    size_bytes: Mapped[int | None] = mapped_column(Integer, default=None)
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, default=None)
    # what a background render needs to run: variables, layer values, options
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    api_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)

    @property
    def storage_name(self) -> str:
        return storage_name(self.key, self.format)


def storage_name(key: str, fmt: str) -> str:
    from renderer.encode import EXTENSIONS

    return f"renders/{key[:2]}/{key}.{EXTENSIONS[fmt]}"
