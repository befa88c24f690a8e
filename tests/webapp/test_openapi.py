"""``/openapi.json`` is a valid, complete OpenAPI 3.1 document of the API and ``/docs`` shows it
(SPEC 6); a property-based run of schemathesis against the live server finds no server error
and no answer that breaks the document."""

from __future__ import annotations

import re

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis.errors import Unsatisfiable
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import webapp.api  # noqa: F401  (registers every operation)
from webapp.models import SCOPES
from webapp.openapi import OPERATIONS

METHODS = {"get", "put", "post", "delete", "patch"}
PRICE_TEMPLATE = {
    "name": "Price tag", "width": 120, "height": 60, "background": "#ffffff",
    "variables": {"price": {"type": "text", "sample": "9"}},
    "layers": [{"name": "price", "type": "text", "x": 4, "y": 4, "width": 112, "height": 52,
                "text": "{{ price }}", "size": 24, "color": "#000000"}],
}
# examples per operation: valid requests, then invalid ones, then valid ones on real objects
EXAMPLES, NEGATIVE_EXAMPLES, SEEDED_EXAMPLES = 25, 10, 10


@pytest.fixture
def settings() -> dict:
    return {"RATE_LIMIT": "100000 per minute"}  # schemathesis is quick


# The document does not depend on the database: one is enough for the tests of it.
ONE_DATABASE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def document(api) -> dict:
    response = api.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    return response.json()


def openapi_path(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)


def served(app) -> set[tuple[str, str]]:
    """(path, method) of every route the app serves, in OpenAPI's path syntax."""
    return {(openapi_path(rule.rule), method.lower()) for rule in app.url_map.iter_rules()
            for method in rule.methods if method.lower() in METHODS}


def documented(document: dict) -> set[tuple[str, str]]:
    return {(path, method) for path, item in document["paths"].items() for method in item
            if method in METHODS}


# --- the document -------------------------------------------------------------------------------

@ONE_DATABASE
def test_document_is_valid_openapi_3_1(document, app):
    assert document["openapi"].startswith("3.1.")
    validate(document)  # raises on any violation of the 3.1 schema
    assert document["servers"] == [{"url": app.config["PUBLIC_URL"]}]
    assert document["components"]["securitySchemes"]["apiKey"] == {
        "type": "http", "scheme": "bearer", "description": "an API key, e.g. pm_…"}


@ONE_DATABASE
def test_every_api_route_is_documented_with_its_method(document, app):
    api_routes = {(path, method) for path, method in served(app)
                  if path.startswith("/api/v1/")}
    assert api_routes, "no API routes found"
    assert api_routes - documented(document) == set()


@ONE_DATABASE
def test_every_documented_operation_exists(document, app):
    assert documented(document) - served(app) == set()
    assert {"/r/{key}.{ext}", "/u/{template_id}.{ext}", "/healthz", "/readyz"} <= set(
        document["paths"])


@ONE_DATABASE
def test_every_api_operation_names_its_security_and_scope(document, app):
    for op in OPERATIONS:
        spec = document["paths"][op.url_rule(app)][op.method]
        assert spec["security"] == [{"apiKey": [op.scope] if op.scope else []}], op.path
        assert spec.get("x-scope") == op.scope, op.path
        assert "401" in spec["responses"], op.path
        assert ("403" in spec["responses"]) == (op.scope is not None), op.path
        assert "429" in spec["responses"], op.path
        error = spec["responses"]["401"]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/ErrorOut"}
    scopes = {spec.get("x-scope") for item in document["paths"].values()
              for spec in item.values()} - {None}
    assert scopes <= set(SCOPES)
    for path in ("/r/{key}.{ext}", "/u/{template_id}.{ext}", "/healthz", "/readyz"):
        assert "security" not in document["paths"][path]["get"]


@ONE_DATABASE
def test_operation_ids_are_unique(document):
    ids = [spec["operationId"] for item in document["paths"].values()
           for spec in item.values()]
    assert len(ids) == len(set(ids))


@ONE_DATABASE
def test_docs_page_lists_every_path(api, document):
    response = api.get("/docs")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    page = response.text
    assert page.startswith("<!doctype html>")
    for path, item in document["paths"].items():
        for method, spec in item.items():
            heading = (f"<code class='m'>{method.upper()}</code> <code>"
                       f"{path.replace('&', '&amp;')}</code>")
            assert heading in page, (method, path)
            if spec.get("x-scope"):
                assert f"Scope: <code>{spec['x-scope']}</code>" in page
    assert "<a href='/openapi.json'>/openapi.json</a>" in page


# --- property-based: the live server against its own document -----------------------------------

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def fuzz(operation, headers: dict, failures: list[str], examples: int, **fixed) -> None:
    @given(case=operation.as_strategy(**fixed))
    @hypothesis.settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    def run(case):
        case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)

    try:
        run()
    except Unsatisfiable:
        pass  # nothing to make invalid: an operation without parameters or body
    except (Exception, BaseExceptionGroup) as exc:  # report every failing operation
        failures.append(f"{operation.label}: {exc}")


def seed(api, token: str) -> dict[str, int]:
    """A template and a render, so that fixed path ids reach real objects."""
    template = api.post("/templates", json=PRICE_TEMPLATE, token=token)
    assert template.status_code == 201, template.text
    render = api.post("/renders", token=token, json={"template": template.json()["id"],
                                                     "variables": {"price": "5"}})
    assert render.status_code == 201, render.text
    return {"template_id": template.json()["id"], "render_id": render.json()["id"]}


# PostgreSQL only, to keep the module quick: it is the stricter database (32-bit INTEGER, types,
# no NUL in text), and runs on both found nothing on SQLite that PostgreSQL did not.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_schemathesis_finds_no_server_error_and_no_broken_answer(api, live, make_account):
    _, _, token = make_account("fuzz@example.com", scopes=list(SCOPES))
    ids = seed(api, token)
    schema = schemathesis.openapi.from_url(live.url + "/openapi.json")
    headers = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(OPERATIONS) + 4
    operations.sort(key=lambda op: op.method.lower() == "delete")  # the seeded ids last
    for operation in operations:
        fuzz(operation, headers, failures, EXAMPLES)
        fuzz(operation, headers, failures, NEGATIVE_EXAMPLES,
             generation_mode=GenerationMode.NEGATIVE)
        names = {p.name for p in operation.path_parameters}
        if names and names <= set(ids):
            fuzz(operation, headers, failures, SEEDED_EXAMPLES,
                 path_parameters={name: ids[name] for name in names})
    assert not failures, "\n\n".join(failures)
