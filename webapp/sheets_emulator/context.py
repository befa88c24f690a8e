"""What the blueprints share: the state of the running emulator and its public address."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from werkzeug.routing import BaseConverter

from .errors import GoogleError
from .store import State

EXTENSION = "sheets_emulator"


class SpreadsheetIdConverter(BaseConverter):
    regex = r"[A-Za-z0-9_-]+"


def state() -> State:
    return current_app.extensions[EXTENSION]


def base_url() -> str:
    """``http://HOST:PORT`` as clients reach the emulator (the key file's token URI uses it)."""
    return current_app.config.get("EMULATOR_PUBLIC_URL") or request.host_url.rstrip("/")


def json_body() -> dict[str, Any]:
    """The request's JSON object, or Google's 400 for anything else."""
    if not request.get_data():
        return {}
    data = request.get_json(silent=True, force=True)
    if not isinstance(data, dict):
        raise GoogleError(400, "Invalid JSON payload received.")
    return data
