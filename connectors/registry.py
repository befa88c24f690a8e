"""Which source types exist: one module each, registered here by their ``type`` key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema

from .base import Connector, Context, SourceError, secret_fields
from .csv_file import FileSource
from .google_sheets import GoogleSheets
from .json_http import JsonHttpSource

CONNECTORS: dict[str, type[Connector]] = {c.type: c for c in (GoogleSheets, FileSource,
                                                               JsonHttpSource)}


def connector_class(type_: str, settings: Mapping[str, Any]) -> type[Connector]:
    cls = CONNECTORS.get(type_)
    if cls is None or not cls.enabled(settings):
        known = ", ".join(sorted(t for t, c in CONNECTORS.items() if c.enabled(settings)))
        raise SourceError("unknown_source_type", f"type: {type_!r} is not a source type here; "
                          f"the types are {known}", status=422, details={"path": "type"})
    return cls


def connector_types(settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"type": cls.type, "name": cls.name, "writable": cls.writable,
             "schema": cls.configuration_schema(settings), **cls.describe(settings)}
            for cls in CONNECTORS.values() if cls.enabled(settings)]


def check_config(cls: type[Connector], config: Mapping[str, Any],
                 settings: Mapping[str, Any]) -> None:
    """Validate a source's configuration against its type's JSON Schema."""
    schema = cls.configuration_schema(settings)
    validator = jsonschema.Draft202012Validator(schema)
    error = next(iter(sorted(validator.iter_errors(dict(config)), key=lambda e: e.path)), None)
    if error is not None:
        where = ".".join(["config", *(str(p) for p in error.absolute_path)])
        raise SourceError("invalid_config", f"{where}: {error.message}", status=422,
                          details={"path": where})
    cls(dict(config), {}, Context(settings))  # the type's own checks (no I/O)


def split_secrets(cls: type[Connector], config: Mapping[str, Any],
                  settings: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(plain config, secret fields) — the secrets are stored encrypted, never shown."""
    secret = secret_fields(cls.configuration_schema(settings))
    return ({k: v for k, v in config.items() if k not in secret},
            {k: v for k, v in config.items() if k in secret})


def open_source(type_: str, config: Mapping[str, Any], secrets: Mapping[str, Any],
                context: Context) -> Connector:
    return connector_class(type_, context.settings)(config, secrets, context)
