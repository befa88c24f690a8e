"""(being built)"""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("batches", __name__)


@bp.get("/batches")
def index():
    return render_template("soon.html")
