"""Typed renderer errors. Each carries a stable ``code``, a human ``message`` and the ``path``
inside the template that is at fault (``layers[3].text``), so callers can turn them into JSON
errors or CLI messages in one place."""

from __future__ import annotations


class RendererError(Exception):
    """Base class: something about a template, its data or its resources is wrong."""

    code = "render_error"

    def __init__(self, message: str, *, path: str | None = None, code: str | None = None):
        self.message = message
        self.path = path
        if code:
            self.code = code
        super().__init__(f"{path}: {message}" if path else message)

    def to_dict(self) -> dict:
        return {"code": self.code, "message": str(self), "details": {"path": self.path}}


class TemplateError(RendererError):
    """The template itself is malformed (bad JSON, unknown layer type, bad size …)."""

    code = "invalid_template"


class ExpressionError(RendererError):
    """An expression does not parse or fails while evaluating (syntax, type, sandbox)."""

    code = "expression_error"


class ResourceError(RendererError):
    """An image, font or other resource cannot be loaded or decoded."""

    code = "resource_error"


class LimitError(RendererError):
    """A configured limit (canvas size, pixels, output length, time) was exceeded."""

    code = "limit_exceeded"
