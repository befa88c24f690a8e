"""API keys: shown once, stored as a SHA-256 digest (they are 256-bit random tokens, so a slow
password hash would add nothing but latency), with scopes, an optional expiry and the time of
last use."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .account import User, Workspace
from .base import UTCDateTime, utcnow

SCOPES = ("render", "templates:read", "templates:write", "sources", "admin")
PREFIX = "pm_"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiKey(db.Model):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"),
                                              index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(16))  # shown in lists to tell keys apart
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(200))  # space-separated
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    workspace: Mapped[Workspace] = relationship()
    user: Mapped[User | None] = relationship()

    @classmethod
    def issue(cls, workspace: Workspace, *, scopes: list[str], user: User | None = None,
              name: str = "", expires_at: dt.datetime | None = None) -> tuple[ApiKey, str]:
        """A new key and its token; the token is never stored and cannot be shown again."""
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown:
            raise ValueError(f"unknown scope {unknown[0]!r} (scopes: {', '.join(SCOPES)})")
        token = PREFIX + secrets.token_urlsafe(32)
        key = cls(workspace=workspace, user=user, name=name, prefix=token[:10],
                  key_hash=digest(token), scopes=" ".join(dict.fromkeys(scopes)),
                  expires_at=expires_at)
        return key, token

    @property
    def scope_list(self) -> list[str]:
        return self.scopes.split()

    def usable(self, now: dt.datetime | None = None) -> str | None:
        """None when the key may be used, else why not."""
        now = now or utcnow()
        if self.revoked_at is not None:
            return "this API key was revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "this API key has expired"
        return None
