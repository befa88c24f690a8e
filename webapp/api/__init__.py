"""The REST API, version 1, under ``/api/v1``: one blueprint per resource."""

from __future__ import annotations

from flask import Blueprint

from ..extensions import limiter, rate_limit_key
from ..ratelimit import KeyLimit
from . import (
    assets,
    batches,
    bindings,
    experiments,
    google,
    hooks,
    live,
    me,
    renders,
    sources,
    templates,
)

bp = Blueprint("api", __name__, url_prefix="/api/v1")
for module in (me, templates, assets, renders, batches, hooks, sources, bindings, google, live,
               experiments):
    bp.register_blueprint(module.bp)

# one budget per API key (or client address without one) across every API operation
KeyLimit(limiter, rate_limit_key, "RATE_LIMIT", scope="api").init_blueprint(bp)
