"""(being built)"""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("hooks", __name__)


@bp.get("/webhooks")
def index():
    return render_template("soon.html")
