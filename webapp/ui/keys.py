"""(being built)"""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("keys", __name__)


@bp.get("/keys")
def index():
    return render_template("soon.html")
