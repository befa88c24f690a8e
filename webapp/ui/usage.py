"""(being built)"""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("usage", __name__)


@bp.get("/usage")
def index():
    return render_template("soon.html")
