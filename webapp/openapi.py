"""API operations and the OpenAPI 3.1 document generated from them.

``operation`` registers a view on a blueprint and records it here with its request and response
models (pydantic), so the same schemas that validate requests describe them in
``/openapi.json``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, request
from pydantic import BaseModel, ValidationError

from .errors import ApiError


@dataclass
class Operation:
    method: str
    path: str
    summary: str
    tag: str
    scope: str | None
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    responses: dict[int, Any]
    multipart: dict[str, Any] | None = None
    description: str = ""
    public: bool = False
    produces: tuple[str, ...] = ()
    errors: tuple[int, ...] = field(default=())
    doc_body: type[BaseModel] | None = None  # documented, validated by the view itself


OPERATIONS: list[Operation] = []


def operation(bp: Blueprint, method: str, rule: str, *, summary: str, tag: str,
              scope: str | None = None, body: type[BaseModel] | None = None,
              query: type[BaseModel] | None = None, responses: dict[int, Any] | None = None,
              multipart: dict[str, Any] | None = None, description: str = "",
              produces: tuple[str, ...] = (), errors: tuple[int, ...] = (),
              doc_body: type[BaseModel] | None = None) -> Callable:
    """Route ``rule`` on ``bp``: authenticate with ``scope``, validate ``body``/``query``."""
    from .auth import require

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def handler(**kwargs):
            if scope is not None:
                require(scope)
            if body is not None:
                kwargs["body"] = parse_body(body)
            if query is not None:
                kwargs["query"] = parse_query(query)
            return view(**kwargs)

        bp.add_url_rule(rule, endpoint=view.__name__, view_func=handler, methods=[method])
        OPERATIONS.append(Operation(
            method.lower(), _openapi_path(bp, rule), summary, tag, scope, body, query,
            responses or {}, multipart, description or (view.__doc__ or "").strip(),
            produces=produces, errors=errors, doc_body=doc_body))
        return handler

    return decorate


def _openapi_path(bp: Blueprint, rule: str) -> str:
    prefix = bp.url_prefix or ""
    return (prefix + rule).replace("<int:", "{").replace("<", "{").replace(">", "}")


def parse_body(model: type[BaseModel]) -> BaseModel:
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type",
                       "send the body as JSON with 'Content-Type: application/json'")
    data = request.get_json(silent=True)
    if data is None:
        raise ApiError(400, "invalid_json", "the request body is not valid JSON")
    return validate(model, data)


def parse_query(model: type[BaseModel]) -> BaseModel:
    return validate(model, {k: v for k, v in request.args.items()})


def validate(model: type[BaseModel], data: Any) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(e) for e in exc.errors(include_url=False)]
        first = problems[0]
        raise ApiError(400, "invalid_request", f"{first['field']}: {first['message']}",
                       details={"errors": problems}) from None


def _problem(error: dict) -> dict[str, str]:
    field_path = ".".join(str(p) for p in error["loc"]) or "body"
    return {"field": field_path, "message": error["msg"]}
