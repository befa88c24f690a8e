"""API operations and the OpenAPI 3.1 document generated from them.

``operation`` registers a view on a blueprint and records it here with its request and response
models (pydantic), so the same schemas that validate requests describe them in
``/openapi.json``."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Flask, request
from pydantic import BaseModel, ValidationError

from .errors import ApiError, not_found
from .schemas import MAX_ID


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
    endpoint: str = ""  # "<blueprint>.<view>"; the app's URL map gives the full path

    def url_rule(self, app: Flask) -> str:
        """The path as the app serves it (a nested blueprint only learns its parent's prefix,
        e.g. ``/api/v1``, when it is registered), in OpenAPI's ``{name}`` form."""
        for rule in app.url_map.iter_rules():
            if rule.endpoint == self.endpoint or rule.endpoint.endswith("." + self.endpoint):
                return _openapi_rule(rule.rule)
        raise LookupError(f"operation {self.endpoint} is not registered on this app")


OPERATIONS: list[Operation] = []


def operation(bp: Blueprint, method: str, rule: str, *, summary: str, tag: str,
              scope: str | None = None, body: type[BaseModel] | None = None,
              query: type[BaseModel] | None = None, responses: dict[int, Any] | None = None,
              multipart: dict[str, Any] | None = None, description: str = "",
              produces: tuple[str, ...] = (), errors: tuple[int, ...] = (),
              doc_body: type[BaseModel] | None = None, public: bool = False) -> Callable:
    """Route ``rule`` on ``bp``: authenticate (with ``scope`` when given; every operation that
    is not ``public`` needs a valid key), validate ``body``/``query``."""
    from .auth import authenticate, require
    from .ratelimit import settle

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def handler(**kwargs):
            settle()  # the rate limit's count, sent before the request reached us
            if scope is not None:
                require(scope)
            elif not public:
                authenticate()
            _check_ids(kwargs)
            if body is not None:
                kwargs["body"] = parse_body(body)
            if query is not None:
                kwargs["query"] = parse_query(query)
            return view(**kwargs)

        bp.add_url_rule(rule, endpoint=view.__name__, view_func=handler, methods=[method])
        OPERATIONS.append(Operation(
            method.lower(), _openapi_path(bp, rule), summary, tag, scope, body, query,
            responses or {}, multipart, description or (view.__doc__ or "").strip(),
            produces=produces, errors=errors, doc_body=doc_body, public=public,
            endpoint=f"{bp.name}.{view.__name__}"))
        return handler

    return decorate


def _check_ids(path_values: dict[str, Any]) -> None:
    """An id past the database's integer range names no object (and must not reach the
    database, which would fail on it)."""
    for name, value in path_values.items():
        if name.endswith("_id") and isinstance(value, int) and not 0 < value <= MAX_ID:
            raise not_found(name.removesuffix("_id"), value)


def _openapi_path(bp: Blueprint, rule: str) -> str:
    return _openapi_rule((bp.url_prefix or "") + rule)


def _openapi_rule(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)


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
