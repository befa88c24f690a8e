"""Data sources (a Google Sheet, an uploaded file) and the Google accounts connected to a
workspace through OAuth. Secret fields and tokens are stored encrypted."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..crypto import decrypt, encrypt
from ..extensions import db
from .base import UTCDateTime, utcnow


class Source(db.Model):
    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"),
                                              index=True)
    type: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secrets_encrypted: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def secrets(self) -> dict[str, Any]:
        return json.loads(decrypt(self.secrets_encrypted)) if self.secrets_encrypted else {}

    @secrets.setter
    def secrets(self, value: dict[str, Any]) -> None:
        self.secrets_encrypted = encrypt(json.dumps(value)) if value else None


class GoogleAccount(db.Model):
    """A Google account a user connected (OAuth, offline access)."""

    __tablename__ = "google_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"),
                                              index=True)
    email: Mapped[str] = mapped_column(String(320))
    token_encrypted: Mapped[str] = mapped_column(Text)  # the token set, JSON, encrypted
    status: Mapped[str] = mapped_column(String(20), default="connected")  # or reconnect
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def token(self) -> dict[str, Any]:
        return json.loads(decrypt(self.token_encrypted))

    @token.setter
    def token(self, value: dict[str, Any]) -> None:
        self.token_encrypted = encrypt(json.dumps(value))
