"""One JSON error shape everywhere: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify
from flask_limiter.errors import RateLimitExceeded
from werkzeug.exceptions import HTTPException

from connectors.base import SourceError
from renderer.errors import LimitError, RendererError

from .storage import NotFound, StorageError

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "unprocessable", 429: "rate_limited",
    500: "internal_error", 502: "bad_gateway", 503: "unavailable",
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, *,
                 details: dict[str, Any] | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, details: dict | None = None,
                   headers: dict | None = None):
    response = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def not_found(what: str, ident: Any) -> ApiError:
    return ApiError(404, f"{what}_not_found", f"no {what.replace('_', ' ')} with id {ident}")


def renderer_status(exc: RendererError) -> int:
    return 413 if isinstance(exc, LimitError) and exc.code == "payload_too_large" else 422


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.errorhandler(RendererError)
    def renderer_error(exc: RendererError):
        return error_response(renderer_status(exc), exc.code, str(exc), {"path": exc.path})

    @app.errorhandler(SourceError)
    def source_error(exc: SourceError):
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.errorhandler(RateLimitExceeded)
    def rate_limited(exc: RateLimitExceeded):
        return error_response(429, "rate_limited",
                              f"too many requests: the limit is {exc.description}; "
                              f"wait for Retry-After seconds")

    @app.errorhandler(StorageError)
    def storage_error(exc: StorageError):
        name = exc.name or "the object"
        if isinstance(exc, NotFound):
            return error_response(404, exc.code, f"{name} is not in the storage")
        log.error("storage failed: %s", exc.message)  # (names the server's folders: not sent)
        return error_response(503, exc.code, f"the storage could not keep {name}; try again "
                              f"(the cause was logged)")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 413:
            limit = app.config["MAX_CONTENT_LENGTH"]
            message = f"the request body is larger than the limit of {limit:,} bytes"
        # keep what the exception says in headers (405's Allow), not its HTML content type
        headers = {name: value for name, value in exc.get_headers()
                   if name.lower() not in ("content-type", "content-length")}
        return error_response(status, HTTP_CODES.get(status, "error"), message,
                              headers=headers)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal_error", "something went wrong on our side; the "
                              "error was logged")
