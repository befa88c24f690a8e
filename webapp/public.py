"""Routes outside the API: stored renders (``/r/``), URL-based renders (``/u/``), health,
readiness, metrics, the OpenAPI document and its page."""

from __future__ import annotations

import hashlib
import hmac
import re
import urllib.parse

from flask import Blueprint, Response, current_app, jsonify, request, send_file
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from renderer.encode import FORMATS

from .errors import ApiError
from .extensions import db, limiter
from .models import Template, Workspace
from .models.render import storage_name
from .rendering import Request, fold, format_of, get_version, load_version, perform
from .schemas import MAX_ID
from .storage import NotFound, StorageError

bp = Blueprint("public", __name__)
KEY = re.compile(r"[0-9a-f]{64}")
EXTENSION_FORMAT = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg", "webp": "webp",
                    "avif": "avif", "gif": "gif", "pdf": "pdf", "zip": "zip"}
MIME = {**FORMATS, "zip": "application/zip"}  # a merged batch may be a ZIP of its files
IMMUTABLE = "public, max-age=31536000, immutable"


@bp.get("/r/<key>.<ext>")
def stored_render(key: str, ext: str):
    """A stored render. Its bytes never change, so caches may keep it forever."""
    fmt = EXTENSION_FORMAT.get(ext.lower())
    if not KEY.fullmatch(key) or fmt is None:
        raise ApiError(404, "render_not_found", "no such render")
    etag = f'"{key}"'
    if etag in request.headers.get("If-None-Match", ""):
        return _cache_headers(Response(status=304), etag)
    return _cache_headers(_stored(f"renders/{key[:2]}/{key}.{_ext(fmt)}", fmt), etag)


def _ext(fmt: str) -> str:
    return "jpg" if fmt == "jpeg" else fmt


def _stored(name: str, fmt: str) -> Response:
    storage = current_app.extensions["storage"]
    path = storage.local_path(name)
    if path is not None:
        if storage.size(name) is None:  # missing, or not trusted (see LocalStorage)
            raise ApiError(404, "render_not_found", "no such render")
        return send_file(path, mimetype=MIME[fmt], conditional=False, etag=False)
    try:
        chunks = storage.iter_chunks(name)  # opens at once: a missing object fails here
    except NotFound:
        raise ApiError(404, "render_not_found", "no such render") from None
    return Response(chunks, mimetype=MIME[fmt])


def _cache_headers(response: Response, etag: str) -> Response:
    response.headers["Cache-Control"] = IMMUTABLE
    response.headers["ETag"] = etag
    return response


# ---------------------------------------------------------------- /u/: URL-based rendering

def _split_signature(raw: str) -> tuple[str, str | None]:
    """(query before the signature, signature). ``s`` must be the last parameter."""
    if raw.startswith("s="):
        before, signature = "", raw[2:]
    elif "&s=" in raw:
        index = raw.rfind("&s=")
        before, signature = raw[:index], raw[index + 3:]
    else:
        return raw, None
    if "&" in signature:
        raise ApiError(400, "invalid_signature", "the signature parameter 's' must come last")
    return before, signature


def signature_for(secret: str, path: str, query: str) -> str:
    message = path + (f"?{query}" if query else "")
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def _check_signature(template: Template, path: str, query: str, signature: str | None) -> None:
    if signature is None:
        if template.public:
            return
        raise ApiError(403, "signature_required", "this template is not public: sign the URL "
                       "with the workspace's signing secret (parameter 's', last)")
    workspace = db.session.get(Workspace, template.workspace_id)
    expected = signature_for(workspace.signing_secret, path, query)
    if not hmac.compare_digest(expected, signature.lower()):
        raise ApiError(403, "invalid_signature", "the signature does not match this URL")


def _options(params: dict[str, str]) -> dict:
    """``_size``, ``_scale``, ``_quality`` and ``_transparent`` are options, not variables."""
    try:
        return {"size": params.get("_size") or None,
                "scale": float(params.get("_scale", 1)),
                "quality": int(params["_quality"]) if "_quality" in params else None,
                "transparent": params.get("_transparent", "").lower() in ("1", "true", "yes")}
    except ValueError:
        raise ApiError(400, "invalid_request", "_scale and _quality must be numbers") from None


@bp.get("/u/<int:template_id>.<ext>")
@limiter.limit(lambda: current_app.config["PUBLIC_RATE_LIMIT"])
def url_render(template_id: int, ext: str):
    """Renders on first request, then answers from the cache (og:image tags, emails)."""
    raw = request.query_string.decode("latin-1")
    query, signature = _split_signature(raw)
    # an id past the INTEGER range names no template (and would make the database fail)
    template = db.session.get(Template, template_id) if 0 < template_id <= MAX_ID else None
    if template is None or template.deleted_at is not None:
        raise ApiError(404, "template_not_found", f"no template with id {template_id}")
    _check_signature(template, request.path, query, signature)
    params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    version = get_version(template, None)
    tpl = load_version(version)
    variables, overrides = fold(tpl, {k: v for k, v in params.items()
                                      if not k.startswith("_")}, None, None)
    opts = _options(params)
    req = Request(template, version, tpl, variables, overrides, format_of(ext), opts["size"],
                  opts["scale"], opts["quality"], opts["transparent"])
    snap, _ = perform(req, workspace_id=template.workspace_id, api_key_id=None, metadata=None)
    response = _stored(storage_name(snap["key"], snap["format"]), snap["format"])
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["ETag"] = f'"{snap["key"]}"'
    return response


# ---------------------------------------------------------------- operations

@bp.get("/healthz")
def healthz():
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    checks = {"database": _check_database, "storage": _check_storage, "redis": _check_redis}
    results = {name: check() for name, check in checks.items()}
    ready = all(result in ("ok", "not configured") for result in results.values())
    response = jsonify({"status": "ok" if ready else "unavailable", "checks": results})
    response.status_code = 200 if ready else 503
    return response


def _check_database() -> str:
    try:
        db.session.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:  # the probe reports any failure instead of failing itself
        db.session.rollback()
        return f"error: {exc.__class__.__name__}"


def _check_storage() -> str:
    try:
        current_app.extensions["storage"].check()
        return "ok"
    except (StorageError, NotFound, OSError) as exc:
        return f"error: {exc}"


def _check_redis() -> str:
    url = current_app.config.get("REDIS_URL")
    if not url:
        return "not configured"
    import redis

    try:
        redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2).ping()
        return "ok"
    except redis.RedisError as exc:
        return f"error: {exc.__class__.__name__}"


@bp.get("/metrics")
def metrics():
    registry = current_app.extensions["metrics"].registry
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


@bp.get("/openapi.json")
def openapi_document():
    from .openapi_doc import document

    return jsonify(document(current_app))


@bp.get("/docs")
def docs_page():
    from .openapi_doc import document, html_page

    return Response(html_page(document(current_app)), mimetype="text/html")
