"""A JSON answer from an HTTP endpoint as a source (SPEC 8): one object for a live banner, or a
list of objects as rows for batches, like a sheet.

Every request goes through the guarded outbound session (``Context.http_policy``): no private,
loopback or metadata addresses, redirects checked again, size and time capped. Header values
are one secret field, stored encrypted. ``ETag``/``If-None-Match`` spare a refresh the body when
nothing changed. Nested objects are flattened to dotted keys (``price.amount``) so that a
mapping can name them like a column.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError

from .base import Connector, Row, SourceError, Table
from .http import (
    GuardedSession,
    OutboundError,
    OutboundPolicy,
    OutboundRefused,
    OutboundTooLarge,
)

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 50_000
_JSON_TYPES = ("application/json", "+json", "text/json", "text/plain")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


@dataclass(frozen=True)
class Fetched:
    """One answer: the parsed body (None when the server said 304 Not Modified), its ETag and
    a digest of the body, so callers can tell whether anything changed."""

    data: Any
    etag: str | None
    digest: str | None
    not_modified: bool = False


class JsonHttpSource(Connector):
    type = "json_http"
    name = "JSON over HTTP"
    writable = False

    def __init__(self, config, secrets, context):
        super().__init__(config, secrets, context)
        self._requests = 0
        _check_headers(self.secrets.get("headers") or self.config.get("headers"))
        select = self.config.get("select") or None
        try:
            self._select = jmespath.compile(select) if select else None
        except JMESPathError as exc:
            raise SourceError("invalid_config", f"config.select: {select!r} is not a JMESPath "
                              f"expression ({_first_line(exc)})", status=422,
                              details={"path": "config.select"}) from None

    @classmethod
    def configuration_schema(cls, settings: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["url"],
            "additionalProperties": False,
            "properties": {
                "url": {"type": "string", "pattern": "^[hH][tT][tT][pP][sS]?://", "title": "URL",
                        "description": "An http or https address answering JSON"},
                "method": {"type": "string", "enum": ["GET", "POST"], "default": "GET",
                           "title": "Method"},
                "headers": {"type": "object", "additionalProperties": {"type": "string"},
                            "secret": True, "title": "Headers",
                            "description": "Sent with every request (e.g. Authorization); "
                                           "stored encrypted, never shown again"},
                "body": {"type": ["object", "array", "null"], "title": "JSON body (POST)"},
                "select": {"type": "string", "title": "Select (JMESPath)",
                           "description": "Picks one object (a live banner) or a list of "
                                          "objects (rows) out of the answer; the whole answer "
                                          "when omitted"},
                "refresh_seconds": {"type": "integer", "minimum": 1, "maximum": 86400,
                                    "default": 60, "title": "Refresh every (seconds)"},
                "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 60,
                                    "default": 10, "title": "Timeout (seconds)"},
            },
        }

    @property
    def requests(self) -> int:
        return self._requests

    @property
    def refresh_seconds(self) -> int:
        return int(self.config.get("refresh_seconds") or 60)

    # ------------------------------------------------------------------ reading

    def fetch(self, etag: str | None = None) -> Fetched:
        """The endpoint's answer, parsed; with ``etag``, a 304 answer is ``not_modified``."""
        url = self.config["url"]
        headers = dict(self.secrets.get("headers") or {})
        if etag:
            headers["If-None-Match"] = etag
        method = self.config.get("method") or "GET"
        self._requests += 1
        try:
            response = self._session().request(
                method, url, headers=headers, accept="application/json",
                json=self.config.get("body") if method == "POST" else None)
        except OutboundRefused as exc:
            raise SourceError("source_refused", f"config.url: {exc}", status=422,
                              details={"path": "config.url"}) from None
        except OutboundTooLarge:
            raise SourceError("source_too_large", f"{method} {url} answered more than "
                              f"{self._max_bytes() // (1024 * 1024)} MB; select less on the "
                              "server side", status=422) from None
        except OutboundError as exc:
            raise SourceError("source_unreachable", str(exc), status=502,
                              transient=True) from None
        if response.status == 304 and etag:
            return Fetched(None, etag, None, not_modified=True)
        return self._parsed(method, url, response)

    def _parsed(self, method: str, url: str, response) -> Fetched:
        if not response.ok:
            transient = response.status >= 500 or response.status == 429
            raise SourceError("source_http_error", f"{method} {url} answered "
                              f"{response.status} {response.reason}".rstrip(),
                              status=502 if transient else 422, transient=transient,
                              details={"status": response.status})
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind and not any(kind == t or kind.endswith(t) for t in _JSON_TYPES):
            raise SourceError("source_not_json", f"{method} {url} answered {kind}, not JSON "
                              "(is it a web page rather than an API endpoint?)", status=422)
        try:
            data = json.loads(response.content, parse_constant=_not_json)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SourceError("source_not_json", f"{method} {url} did not answer valid JSON "
                              f"({exc})", status=422) from None
        except RecursionError:
            raise SourceError("source_not_json", f"{method} {url} answered JSON nested too "
                              "deeply to read", status=422) from None
        digest = hashlib.sha256(response.content).hexdigest()
        return Fetched(data, response.headers.get("etag"), digest)

    def _session(self) -> GuardedSession:
        policy = self.context.settings.get("http_policy") or OutboundPolicy()
        timeout = float(self.config.get("timeout_seconds") or 10)
        return GuardedSession(dataclasses.replace(
            policy, timeout=timeout, max_bytes=self._max_bytes()),
            resolver=self.context.settings.get("resolver"))

    def _max_bytes(self) -> int:
        return int(self.context.settings.get("max_source_bytes") or MAX_BYTES)

    def selected(self, data: Any) -> Any:
        if self._select is None:
            return data
        try:
            found = self._select.search(data)
        except JMESPathError as exc:
            raise SourceError("select_failed", f"config.select: {_first_line(exc)}",
                              status=422, details={"path": "config.select"}) from None
        if found is None or found == []:
            raise SourceError("select_empty", f"config.select: {self.config['select']!r} "
                              f"selects nothing in the answer ({_shape(data)})", status=422,
                              details={"path": "config.select"})
        return found

    def one_object(self, data: Any) -> dict[str, Any]:
        """The object a live banner shows, flattened."""
        found = self.selected(data)
        if isinstance(found, list) and len(found) == 1 and isinstance(found[0], dict):
            found = found[0]
        if not isinstance(found, dict):
            what = f"a list of {len(found)} items" if isinstance(found, list) else \
                f"a {type(found).__name__}"
            raise SourceError("select_not_object", "config.select: a live banner needs one "
                              f"object, and the answer gives {what} (select one, e.g. "
                              "items[0])", status=422, details={"path": "config.select"})
        return flatten(found)

    def objects(self, data: Any) -> list[dict[str, Any]]:
        """The objects rows are made of, flattened."""
        found = self.selected(data)
        items = found if isinstance(found, list) else [found]
        bad = next((i for i, item in enumerate(items) if not isinstance(item, dict)), None)
        if bad is not None:
            raise SourceError("select_not_objects", f"config.select: item {bad} of the "
                              f"selection is a {type(items[bad]).__name__}, not an object; "
                              "rows must be objects", status=422,
                              details={"path": "config.select"})
        if len(items) > MAX_ROWS:
            raise SourceError("too_many_rows", f"the selection has {len(items)} items; at most "
                              f"{MAX_ROWS} can be read", status=413)
        return [flatten(item) for item in items]

    def read(self) -> Table:
        items = self.objects(self.fetch().data)
        header: dict[str, None] = {}
        for item in items:
            header.update(dict.fromkeys(item))
        columns = list(header)
        rows = [Row(i + 1, [cell_text(item.get(c)) for c in columns])
                for i, item in enumerate(items)]
        return Table(columns, rows, header_row=0, title=self.config.get("url", ""))

    def test_connection(self) -> dict[str, Any]:
        fetched = self.fetch()
        items = self.objects(fetched.data)
        columns = list(dict.fromkeys(k for item in items for k in item))
        return {"ok": True, "title": self.config["url"], "columns": columns,
                "rows": len(items), "sample": items[0] if items else {}}


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def finite(value: Any) -> bool:
    """No NaN or Infinity anywhere (Python's JSON reader takes them; JSON and PostgreSQL do
    not)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(finite(v) for v in value.values())
    if isinstance(value, list):
        return all(finite(v) for v in value)
    return True


def _check_headers(headers: Any) -> None:
    for name, value in (headers or {}).items():
        if not _TOKEN.fullmatch(str(name)) or not isinstance(value, str) \
                or _BAD_VALUE.search(value):
            raise SourceError("invalid_config", f"config.headers.{name}: header names are "
                              "letters, digits and -_.!#$%&'*+^`|~, and values hold no line "
                              "breaks or control characters", status=422,
                              details={"path": f"config.headers.{name}"})


def flatten(item: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"price": {"amount": 9}}`` → ``{"price.amount": 9}``; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in item.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def cell_text(value: Any) -> str:
    """A JSON value as a sheet would show it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False)


def _shape(data: Any) -> str:
    if isinstance(data, dict):
        keys = ", ".join(list(data)[:12]) or "none"
        return f"its top-level keys are: {keys}"
    if isinstance(data, list):
        return f"it is a list of {len(data)} items"
    return f"it is a {type(data).__name__}"


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
