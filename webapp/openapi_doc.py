"""``/openapi.json`` (OpenAPI 3.1) from the registered operations, and the ``/docs`` page."""

from __future__ import annotations

import html
import json
import re
from typing import Any

from flask import Flask
from pydantic import BaseModel

from .errors import HTTP_CODES
from .openapi import OPERATIONS, Operation
from .schemas import MAX_ID, ErrorOut

REF = "#/components/schemas/{model}"
ERROR_TEXT = {
    400: "Malformed JSON or a request that does not match the schema",
    401: "Missing, unknown, revoked or expired API key",
    403: "The API key lacks the scope, or the URL signature is missing or wrong",
    404: "No such object in this workspace",
    413: "The body or a file is larger than the limit",
    415: "Wrong content type",
    422: "The template, an expression or a resource failed; the error names the path",
    429: "Rate limit or monthly quota reached; see Retry-After",
    502: "The data source answered with an error or could not be reached",
    503: "A service it needs (the job queue) is not available",
}


def document(app: Flask) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        path = op.url_rule(app)
        paths.setdefault(path, {})[op.method] = _operation(op, path, schemas)
    paths.update(_public_paths())
    _add_model(ErrorOut, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Pixelmerge API", "version": "1",
                 "description": "Templates plus data become images and PDFs. Authenticate "
                                "with 'Authorization: Bearer <api key>'. Errors are "
                                "{\"error\": {\"code\", \"message\", \"details\"}}."},
        "servers": [{"url": app.config["PUBLIC_URL"].rstrip("/")}],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {
            "apiKey": {"type": "http", "scheme": "bearer",
                       "description": "an API key, e.g. pm_…"}}},
    }


def _add_model(model: type[BaseModel], schemas: dict) -> dict[str, str]:
    schema = model.model_json_schema(ref_template=REF)
    for name, definition in schema.pop("$defs", {}).items():
        schemas[name] = definition
    schemas[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


def _operation(op: Operation, path: str, schemas: dict) -> dict[str, Any]:
    spec: dict[str, Any] = {"operationId": op.path.strip("/").replace("/", "_") + "_" +
                            op.method, "summary": op.summary, "tags": [op.tag],
                            "responses": _responses(op, schemas)}
    if op.description:
        spec["description"] = op.description
    if not op.public:
        # OpenAPI 3.1 lets a non-OAuth requirement list the roles it needs: here the scope
        spec["security"] = [{"apiKey": [op.scope] if op.scope else []}]
    if op.scope:
        spec["x-scope"] = op.scope
    parameters = _path_parameters(path) + _query_parameters(op.query)
    if parameters:
        spec["parameters"] = parameters
    body = _request_body(op, schemas)
    if body:
        spec["requestBody"] = body
    return spec


def _path_parameters(path: str) -> list[dict]:
    return [{"name": name, "in": "path", "required": True,
             "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}
             if name.endswith("_id") else {"type": "string"}}
            for name in re.findall(r"{(\w+)}", path)]


def _query_parameters(model: type[BaseModel] | None) -> list[dict]:
    if model is None:
        return []
    schema = model.model_json_schema(ref_template=REF)
    required = set(schema.get("required", []))
    return [{"name": name, "in": "query", "required": name in required, "schema": prop}
            for name, prop in schema["properties"].items()]


def _request_body(op: Operation, schemas: dict) -> dict | None:
    content: dict[str, Any] = {}
    model = op.body or op.doc_body
    if model is not None:
        content["application/json"] = {"schema": _add_model(model, schemas)}
    if op.multipart:
        properties = {name: ({"type": "string", "contentMediaType": "application/octet-stream"}
                             if name == "file" else {"type": "string"}) | {"description": text}
                      for name, text in op.multipart.items()}
        content["multipart/form-data"] = {"schema": {
            "type": "object", "properties": properties, "required": ["file"]}}
    return {"required": True, "content": content} if content else None


def _responses(op: Operation, schemas: dict) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, model in op.responses.items():
        responses[str(status)] = _response(status, model, op, schemas)
    error = {"$ref": REF.format(model="ErrorOut")}
    statuses = (set(op.errors) | ({401} if not op.public else set())
                | ({403} if op.scope else set()) | {429}
                | ({400} if op.body or op.query else set()) | ({415} if op.body else set()))
    for status in sorted(statuses):
        responses[str(status)] = {"description": ERROR_TEXT.get(status, HTTP_CODES[status]),
                                  "content": {"application/json": {"schema": error}}}
    return responses


def _response(status: int, model: Any, op: Operation, schemas: dict) -> dict[str, Any]:
    if model is None:
        return {"description": "No content"}
    if model == "image":
        binary = {"type": "string", "contentMediaType": "application/octet-stream"}
        return {"description": "The picture", "content": {t: {"schema": binary}
                                                          for t in op.produces}}
    return {"description": "OK" if status < 300 else "", "content": {
        "application/json": {"schema": _add_model(model, schemas)}}}


def _public_paths() -> dict[str, Any]:
    binary = {"description": "The picture (or a batch's merged PDF or ZIP)", "content": {
        kind: {"schema": {"type": "string", "contentMediaType": kind}} for kind in (
            "image/png", "image/jpeg", "image/webp", "image/avif", "image/gif",
            "application/pdf", "application/zip")}}
    return {
        "/r/{key}.{ext}": {"get": {
            "operationId": "stored_render", "tags": ["renders"],
            "summary": "A stored render (immutable: Cache-Control immutable, ETag = key)",
            "parameters": [{"name": "key", "in": "path", "required": True,
                            "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"}},
                           {"name": "ext", "in": "path", "required": True,
                            "schema": {"enum": ["png", "jpg", "jpeg", "webp", "avif", "gif",
                                                "pdf", "zip"]}}],
            "responses": {"200": binary, "304": {"description": "Not modified"},
                          "404": _error("No such render")}}},
        "/u/{template_id}.{ext}": {"get": {
            "operationId": "url_render", "tags": ["renders"],
            "summary": "Render from the URL: variables as query parameters, then s = hex "
                       "HMAC-SHA256 of the path and query before '&s=' (unless public)",
            "parameters": [{"name": "template_id", "in": "path", "required": True,
                            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}},
                           {"name": "ext", "in": "path", "required": True,
                            "schema": {"enum": ["png", "jpg", "jpeg", "webp", "avif", "gif",
                                                "pdf"]}},
                           {"name": "s", "in": "query", "required": False,
                            "schema": {"type": "string"}}],
            "responses": {"200": binary,
                          "400": _error("The signature is not last, or an option is no number"),
                          "403": _error("Unsigned or wrongly signed"),
                          "404": _error("No such template or version"),
                          "422": _error(ERROR_TEXT[422]),
                          "429": _error("Rate limit (per client address) or monthly quota "
                                        "reached; see Retry-After")}}},
        "/healthz": {"get": {"operationId": "healthz", "tags": ["operations"],
                             "summary": "The process is up",
                             "responses": {"200": {"description": "OK"}}}},
        "/readyz": {"get": {"operationId": "readyz", "tags": ["operations"],
                            "summary": "Database, Redis and storage are reachable",
                            "responses": {"200": {"description": "Ready"},
                                          "503": {"description": "Not ready"}}}},
    }


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {
        "schema": {"$ref": REF.format(model="ErrorOut")}}}}


def html_page(doc: dict[str, Any]) -> str:
    """A plain page of the document: every operation with its scope, body and answers."""
    parts = [f"<h1>{html.escape(doc['info']['title'])}</h1>",
             f"<p>{html.escape(doc['info']['description'])}</p>",
             "<p>The machine-readable document: <a href='/openapi.json'>/openapi.json</a></p>"]
    for path, methods in doc["paths"].items():
        for method, spec in methods.items():
            parts.append(_html_operation(path, method, spec))
    style = ("body{font-family:system-ui,sans-serif;max-width:960px;margin:2rem auto;"
             "padding:0 1rem;color:#0f172a}h2{font-size:1.05rem;margin-top:2rem}"
             "code.m{background:#1e3a8a;color:#fff;padding:2px 6px;border-radius:4px}"
             "pre{background:#f1f5f9;padding:.75rem;overflow:auto;font-size:.8rem}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Pixelmerge API</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")


def _html_operation(path: str, method: str, spec: dict) -> str:
    scope = spec.get("x-scope")
    body = spec.get("requestBody", {}).get("content", {})
    return "".join([
        f"<h2><code class='m'>{method.upper()}</code> <code>{html.escape(path)}</code> — "
        f"{html.escape(spec.get('summary', ''))}</h2>",
        f"<p>{html.escape(spec.get('description', ''))}</p>" if spec.get("description") else "",
        f"<p>Scope: <code>{html.escape(scope)}</code></p>" if scope else "",
        "".join(f"<p>Body ({html.escape(kind)}):</p><pre>"
                f"{html.escape(json.dumps(value['schema'], indent=1))}</pre>"
                for kind, value in body.items()),
        "<p>Answers: " + ", ".join(html.escape(f"{code} {value.get('description', '')}")
                                   for code, value in spec["responses"].items()) + "</p>",
    ])
