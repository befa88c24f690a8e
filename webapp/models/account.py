"""Workspaces and the users who belong to them. Every object belongs to a workspace."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from ..crypto import decrypt, encrypt
from ..extensions import db
from .base import UTCDateTime, utcnow


class Workspace(db.Model):
    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    signing_secret_encrypted: Mapped[str] = mapped_column(String(500))
    monthly_quota: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    members: Mapped[list[Membership]] = relationship(back_populates="workspace")

    @classmethod
    def create(cls, name: str) -> Workspace:
        workspace = cls(name=name)
        workspace.rotate_signing_secret()
        return workspace

    @property
    def signing_secret(self) -> str:
        return decrypt(self.signing_secret_encrypted)

    def rotate_signing_secret(self) -> str:
        secret = secrets.token_hex(32)
        self.signing_secret_encrypted = encrypt(secret)
        return secret


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    memberships: Mapped[list[Membership]] = relationship(back_populates="user")

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def workspace(self) -> Workspace:
        return self.memberships[0].workspace


class Membership(db.Model):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "workspace_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(20), default="owner")

    user: Mapped[User] = relationship(back_populates="memberships")
    workspace: Mapped[Workspace] = relationship(back_populates="members")
