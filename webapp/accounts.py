"""Creating users, workspaces and API keys (the CLI now, the sign-up page later)."""

from __future__ import annotations

import datetime as dt
import re

from .extensions import db
from .models import ApiKey, Membership, User, Workspace

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class AccountError(Exception):
    pass


def create_user(email: str, password: str, workspace_name: str | None = None) -> User:
    email = email.strip().lower()
    if not EMAIL.fullmatch(email):
        raise AccountError(f"{email!r} is not an email address")
    if len(password) < 8:
        raise AccountError("the password needs at least 8 characters")
    if db.session.scalar(db.select(User).where(User.email == email)) is not None:
        raise AccountError(f"a user {email} exists already")
    workspace = Workspace.create(workspace_name or f"{email.split('@')[0]}'s workspace")
    user = User(email=email)
    user.set_password(password)
    db.session.add_all([workspace, user, Membership(user=user, workspace=workspace)])
    db.session.commit()
    return user


def find_user(email: str) -> User:
    user = db.session.scalar(db.select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise AccountError(f"no user {email}")
    return user


def issue_key(email: str, scopes: list[str], *, expires_at: dt.datetime | None = None,
              name: str = "") -> tuple[ApiKey, str]:
    user = find_user(email)
    try:
        key, token = ApiKey.issue(user.workspace, scopes=scopes, user=user, name=name,
                                  expires_at=expires_at)
    except ValueError as exc:
        raise AccountError(str(exc)) from None
    db.session.add(key)
    db.session.commit()
    return key, token
