"""(being built)"""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("bindings", __name__)


@bp.get("/bindings")
def index():
    return render_template("soon.html")
