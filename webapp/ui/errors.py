"""Errors on UI pages are pages (JSON for the UI's own ``.json`` endpoints): a 404 looks the
same whether the object never existed or belongs to another workspace."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, flash, render_template, request, session
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from connectors.base import SourceError
from renderer.errors import RendererError

from ..errors import ApiError, error_response
from .common import back

log = logging.getLogger(__name__)
TITLES = {400: "Bad request", 403: "Not allowed", 404: "Not found", 405: "Not allowed",
          413: "Too large", 422: "Cannot do that", 429: "Slow down", 500: "Something broke",
          503: "Not available"}


def wants_json() -> bool:
    return request.path.endswith(".json") or request.accept_mimetypes.best == "application/json"


def page(status: int, message: str, code: str = "error"):
    if wants_json():
        return error_response(status, code, message)
    return render_template("error.html", status=status, title=TITLES.get(status, "Error"),
                           message=message), status


def register(bp: Blueprint) -> None:
    @bp.errorhandler(CSRFError)
    def csrf_failed(exc: CSRFError):
        if wants_json():
            return error_response(400, "csrf_failed", exc.description)
        session["restore_drafts"] = True
        flash("The form had expired (or your session ended), so nothing was changed. "
              "Please try again.", "error")
        return back()

    @bp.errorhandler(413)
    def too_large(exc: HTTPException):
        limit = current_app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)
        if wants_json():
            return error_response(413, "payload_too_large", f"larger than {limit} MB")
        flash(f"That upload is larger than the limit of {limit} MB; nothing was saved.",
              "error")
        return back()

    @bp.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 500
        messages = {404: "There is nothing here, or it belongs to another workspace."}
        return page(status, messages.get(status, exc.description or exc.name))

    @bp.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return page(exc.status, exc.message, exc.code)

    @bp.errorhandler(SourceError)
    def source_error(exc: SourceError):
        return page(exc.status, exc.message, exc.code)

    @bp.errorhandler(RendererError)
    def renderer_error(exc: RendererError):
        return page(422, str(exc), exc.code)

    @bp.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error in the web UI")
        return page(500, "Something went wrong on our side; the error was logged.")
