"""Uploaded fonts and images, referenced from templates as ``asset:<name>``. A name is unique
within a workspace; uploading the same name again replaces what it points at."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime, utcnow


class Asset(db.Model):
    __tablename__ = "assets"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"),
                                              index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))  # "font" | "image"
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    family: Mapped[str | None] = mapped_column(String(200), default=None)  # fonts
    weight: Mapped[int | None] = mapped_column(Integer, default=None)  # fonts
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def storage_name(self) -> str:
        return f"assets/{self.workspace_id}/{self.sha256}"
