"""The web UI for marketers (SPEC 10): server-rendered pages with progressive JavaScript.

One blueprint per area, all nested in ``ui``. The ``ui`` blueprint signs requests in (Flask-Login
sessions), checks CSRF tokens on its unsafe methods (the API and the public endpoints take no
cookies, so CSRF is not checked app-wide) and answers errors as pages. ``NAV`` is the navigation:
an area added later (the editor, live banners, experiments) registers its blueprint in ``AREAS``
and, if it has a page of its own in the menu, a line in ``NAV``.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from flask import Blueprint, Flask, current_app, request, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user

from ..extensions import csrf, login_manager
from ..models.base import iso, utcnow
from . import (
    auth,
    batches,
    bindings,
    dashboard,
    editor,
    errors,
    experiments,
    hooks,
    keys,
    live,
    sources,
    templates,
    usage,
)

bp = Blueprint("ui", __name__)
AREAS = (auth, dashboard, templates, editor, sources, bindings, batches, live, experiments, keys,
         hooks, usage)
for _area in AREAS:
    bp.register_blueprint(_area.bp)
errors.register(bp)


class NavItem(NamedTuple):
    label: str
    endpoint: str  # where the link goes
    prefix: str  # the paths under which the item shows as current
    icon: str


NAV = [
    NavItem("Dashboard", "ui.dashboard.index", "/", "home"),
    NavItem("Templates", "ui.templates.gallery", "/templates", "image"),
    NavItem("Data sources", "ui.sources.index", "/sources", "table"),
    NavItem("Bindings", "ui.bindings.index", "/bindings", "link"),
    NavItem("Batches", "ui.batches.index", "/batches", "layers"),
    NavItem("Live banners", "ui.live.index", "/banners", "radio"),
    NavItem("Experiments", "ui.experiments.index", "/experiments", "split"),
    NavItem("API keys", "ui.keys.index", "/keys", "key"),
    NavItem("Webhooks", "ui.hooks.index", "/webhooks", "send"),
    NavItem("Usage", "ui.usage.index", "/usage", "gauge"),
]
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


@bp.before_request
def _guard():
    if request.method in UNSAFE:
        csrf.protect()
    if request.endpoint not in auth.PUBLIC and not current_user.is_authenticated:
        return login_manager.unauthorized()
    return None


class UiSessions(SecureCookieSessionInterface):
    """Sign-in cookies belong to the UI. Flask marks the session read on every request (Flask-
    Login looks at it after each one) and then answers ``Vary: Cookie``, which would split
    shared caches of ``/r/`` pictures, served ``immutable``, by cookie: answers outside the UI
    (the API, ``/r/``, ``/u/``, ``/live`` …) never set it and say nothing of it (nothing there
    uses it)."""

    def save_session(self, app: Flask, session, response) -> None:
        if not session.modified and (request.blueprint or "").split(".")[0] != bp.name:
            return
        super().save_session(app, session, response)


def init_app(app: Flask) -> None:
    app.session_interface = UiSessions()
    login_manager.init_app(app)
    csrf.init_app(app)
    auth.init_login(login_manager)
    app.register_blueprint(bp)
    app.context_processor(_layout)
    app.jinja_env.filters.update(iso=_iso, ago=_ago)


def _layout() -> dict:
    return {"nav": [item for item in NAV if item.endpoint in current_app.view_functions],
            "nav_current": _current, "endpoint_exists": _endpoint_exists}


def _iso(value: dt.datetime) -> str:
    return iso(value) or ""


def _ago(value: dt.datetime) -> str:
    """"3 min ago", "2 days ago", else the date: lists read faster than with timestamps."""
    seconds = (utcnow() - value).total_seconds()
    if seconds < 0:
        return "in " + _span(-seconds)
    return "just now" if seconds < 45 else _span(seconds) + " ago"


def _span(seconds: float) -> str:
    for size, unit in ((86400 * 30, None), (86400, "day"), (3600, "hour"), (60, "min")):
        if seconds >= size:
            if unit is None:
                return f"{int(seconds // 86400)} days"
            count = int(seconds // size)
            return f"{count} {unit}" + ("s" if count > 1 and unit != "min" else "")
    return f"{int(seconds)} s"


def _current(item: NavItem) -> bool:
    path = request.path
    return path == "/" if item.prefix == "/" else (
        path == item.prefix or path.startswith(item.prefix + "/"))


def _endpoint_exists(endpoint: str) -> bool:
    return endpoint in current_app.view_functions


def link_if(endpoint: str, **values) -> str | None:
    """The URL of a page that may not exist yet (the editor), else None."""
    return url_for(endpoint, **values) if endpoint in current_app.view_functions else None
