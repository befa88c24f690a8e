"""Errors in Google's shapes: the APIs' ``{"error": {"code", "message", "status"}}`` and the
OAuth endpoints' ``{"error", "error_description"}``."""

from __future__ import annotations

from typing import Any

STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
          404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 429: "RESOURCE_EXHAUSTED",
          500: "INTERNAL", 503: "UNAVAILABLE"}
MESSAGES = {
    400: "Request contains an invalid argument.",
    401: "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
         "cookie or other valid authentication credential. See "
         "https://developers.google.com/identity/sign-in/web/devconsole-project.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    500: "Internal error encountered.",
    503: "The service is currently unavailable.",
}
MISSING_CREDENTIALS = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project.")
INSUFFICIENT_SCOPES = "Request had insufficient authentication scopes."
PROJECT_NUMBER = "100000000001"


class GoogleError(Exception):
    """An API error; ``body()`` is what Google sends."""

    def __init__(self, code: int, message: str | None = None, *,
                 details: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message or MESSAGES.get(code, "Unknown error."))
        self.code = code
        self.message = str(self)
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message,
                                 "status": STATUS.get(self.code, "UNKNOWN")}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def quota_exceeded(kind: str, *, retry_after: int | None = None) -> GoogleError:
    """The 429 Google sends past a per-minute quota; ``kind`` is ``Read`` or ``Write``."""
    metric, limit = f"{kind} requests", f"{kind} requests per minute per user"
    message = (f"Quota exceeded for quota metric '{metric}' and limit '{limit}' of service "
               f"'sheets.googleapis.com' for consumer 'project_number:{PROJECT_NUMBER}'.")
    details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "RATE_LIMIT_EXCEEDED", "domain": "googleapis.com",
                "metadata": {"service": "sheets.googleapis.com",
                             "quota_metric": f"sheets.googleapis.com/{kind.lower()}_requests",
                             "quota_limit": f"{kind}RequestsPerMinutePerUser",
                             "consumer": f"projects/{PROJECT_NUMBER}"}}]
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return GoogleError(429, message, details=details, headers=headers)


class OAuthError(Exception):
    """An error of the token, revocation or userinfo endpoints."""

    def __init__(self, error: str, description: str, code: int = 400):
        super().__init__(description)
        self.error = error
        self.description = description
        self.code = code

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class AdminError(Exception):
    """A bad admin API call: ``{"error": message}``."""

    def __init__(self, message: str, code: int = 400):
        super().__init__(message)
        self.code = code
