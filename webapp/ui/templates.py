"""(being built)"""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("templates", __name__)


@bp.get("/templates")
def gallery():
    return render_template("soon.html")
