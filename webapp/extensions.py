"""Extensions, created unbound and wired to the app in ``create_app``."""

from __future__ import annotations

from flask import request
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


# Request-scoped sessions: objects stay readable after commit instead of being re-selected.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})


def rate_limit_key() -> str:
    """Per API key (its digest: the limit is checked before authentication, and needs no
    database), else per client address."""
    from .auth import bearer_token
    from .models.apikey import digest

    token = bearer_token()
    return f"key:{digest(token)[:32]}" if token else f"ip:{request.remote_addr}"


limiter = Limiter(key_func=rate_limit_key, headers_enabled=True, default_limits=[])


# The web UI: session sign-in, and CSRF tokens checked by the UI blueprints only (the API
# authenticates with bearer keys, the public endpoints take no cookies).
login_manager = LoginManager()
csrf = CSRFProtect()
