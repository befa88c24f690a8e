"""(being built)"""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("sources", __name__)


@bp.get("/sources")
def index():
    return render_template("soon.html")
