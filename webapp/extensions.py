"""Extensions, created unbound and wired to the app in ``create_app``."""

from __future__ import annotations

from flask import g, request
from flask_limiter import Limiter
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


# Request-scoped sessions: objects stay readable after commit instead of being re-selected.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})


def rate_limit_key() -> str:
    """Per API key when the request carries one, else per client address."""
    key = getattr(g, "api_key", None)
    return f"key:{key.id}" if key is not None else f"ip:{request.remote_addr}"


limiter = Limiter(key_func=rate_limit_key, headers_enabled=True, default_limits=[])
