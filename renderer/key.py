"""Render identity (SPEC 5): the SHA-256 of the canonical JSON of template id, template version,
resolved variables, format, options and size. Outside the web app the template's canonical
content (its digest) stands in for both id and version."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any

from .model import Template, canonical_json


def _plain(value: Any) -> Any:
    """Values as canonical JSON sees them: dates as ISO text, whole floats as ints."""
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def compute_key(*, template_id: Any, version: Any, variables: Mapping[str, Any], format: str,
                options: Mapping[str, Any], size: str | None,
                layers: Mapping[str, Any] | None = None,
                assets: Mapping[str, str] | None = None) -> str:
    payload = {
        "template": template_id, "version": version, "variables": _plain(variables),
        "format": format, "options": _plain(options), "size": size,
    }
    if layers:  # per-layer values of the request (Placid/Bannerbear shapes) are part of it
        payload["layers"] = _plain(layers)
    if assets:  # what asset names point at: a re-uploaded picture is another request
        payload["assets"] = dict(assets)
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def used_variables(template: Template, resolved: Mapping[str, Any]) -> dict[str, Any]:
    """Only the variables the template can see count, so a Zapier step that sends a whole row
    gets the same key as one that sends just the mapped fields."""
    names = referenced_names(template)
    return {k: v for k, v in resolved.items() if k in names}


def referenced_names(template: Template) -> frozenset[str]:
    cached = _referenced.get(template.digest)
    if cached is None:
        names = set(template.variables)
        for text in _strings(template.source):
            if "{{" in text or "{%" in text:
                names |= _names_in(text)
        cached = _referenced[template.digest] = frozenset(names)
    return cached


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _names_in(text: str) -> set[str]:
    from jinja2 import Environment, TemplateSyntaxError, meta

    try:
        return set(meta.find_undeclared_variables(Environment().parse(text)))
    except TemplateSyntaxError:  # load_template already refused real syntax errors
        return set()


_referenced: dict[str, frozenset[str]] = {}
