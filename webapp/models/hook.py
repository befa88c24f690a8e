"""Outgoing webhooks: REST-hook subscriptions and the log of every delivery and attempt."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..crypto import decrypt, encrypt
from ..extensions import db
from .base import UTCDateTime, utcnow

EVENTS = ("render.completed", "render.failed", "batch.completed", "sync.completed")


class Hook(db.Model):
    __tablename__ = "hooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"),
                                              index=True)
    target_url: Mapped[str] = mapped_column(String(2000))
    event: Mapped[str] = mapped_column(String(40))
    template_id: Mapped[int | None] = mapped_column(Integer, default=None)  # a filter
    secret_encrypted: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def secret(self) -> str:
        return decrypt(self.secret_encrypted)

    def new_secret(self) -> str:
        secret = "whsec_" + secrets.token_urlsafe(32)
        self.secret_encrypted = encrypt(secret)
        return secret


class Delivery(db.Model):
    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"),
                                              index=True)
    hook_id: Mapped[int | None] = mapped_column(ForeignKey("hooks.id", ondelete="SET NULL"),
                                                index=True, default=None)
    target_url: Mapped[str] = mapped_column(String(2000))
    event: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)  # the JSON exactly as sent (and signed)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # or delivered, failed, gone
    attempts: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
