"""The visual editor for layered templates (SPEC 10): ``/templates/<id>/edit``.

The canvas is the server's own render: the page posts the template being edited and the sample
values to ``preview``, which validates and renders them exactly as ``POST
/api/v1/templates/{id}/preview`` does, so what the editor shows is what the API produces.
Pictures are kept in a small per-process cache under their render key (template digest,
variables, size and asset digests), so undo, redo and switching back and forth between sizes
answer at once. ``save`` makes a new version the way ``PUT /api/v1/templates/{id}`` does.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select

import renderer
from connectors.base import SourceError
from renderer import RendererError
from renderer.key import referenced_names
from renderer.model import COMMON_PROPS, LAYER_PROPS, POSITIONS

from ..api.templates import json_text, validated_template
from ..errors import ApiError
from ..extensions import db
from ..models import Binding, Source, Template
from ..rendering import (
    WorkspaceAssets,
    asset_digests,
    asset_names,
    asset_rows,
    fold,
    get_version,
    limits,
    load_version,
    outbound,
)
from .common import owned, workspace_id
from .templates import save

bp = Blueprint("editor", __name__)
CACHE_ENTRIES = 64
CACHE_BYTES = 48 * 1024 * 1024
BUNDLED_FONTS = ("Noto Sans", "Noto Serif", "Noto Sans Mono")
_cache_lock = threading.Lock()


@bp.get("/templates/<int:template_id>/edit")
def edit(template_id: int):
    row = owned(Template, template_id)
    version = get_version(row, None)
    content = json.loads(version.content)
    if row.kind != "layered":
        return render_template("editor/html.html", row=row, version=version,
                               source=json.dumps(content, indent=2, ensure_ascii=False))
    tpl = load_version(version)
    config = {
        "templateId": row.id, "version": version.version, "template": content,
        "userId": current_user.get_id().partition(".")[0],
        "props": _prop_schema(), "fonts": _font_families(tpl),
        "variables": sorted(referenced_names(tpl) | set(tpl.variables)),
        "bound": bool(_bindings(row)),
        "urls": {"preview": url_for(".preview", template_id=row.id),
                 "save": url_for(".save_version", template_id=row.id),
                 "columns": url_for(".columns", template_id=row.id),
                 "detail": url_for("ui.templates.detail", template_id=row.id),
                 "login": url_for("ui.auth.login", next=request.path)},
    }
    return render_template("editor/edit.html", row=row, version=version, tpl=tpl,
                           config=config, source=json.dumps(content, indent=2,
                                                            ensure_ascii=False))


def _prop_schema() -> dict[str, Any]:
    """The layer properties the renderer knows, with defaults and choices: the properties panel
    is drawn from the renderer's own model, so it cannot drift from the format."""
    def describe(props):  # pairs: the page's JSON has its keys sorted, the panel keeps order
        return [[name, {"kind": p.kind, "default": p.default, "required": p.required,
                        "choices": list(p.choices), "min": p.minimum, "max": p.maximum}]
                for name, p in props.items()]

    return {"common": describe(COMMON_PROPS),
            "types": {kind: describe(props) for kind, props in LAYER_PROPS.items()},
            "positions": list(POSITIONS)}


def _font_families(tpl: renderer.Template) -> list[str]:
    uploaded = [r.family for r in asset_rows(workspace_id(), set()).values()
                if r.kind == "font" and r.family]
    return sorted({*BUNDLED_FONTS, *tpl.fonts, *uploaded})


def _bindings(row: Template) -> list[Binding]:
    return list(db.session.scalars(select(Binding).where(
        Binding.template_id == row.id, Binding.workspace_id == workspace_id())))


# ---------------------------------------------------------------- preview


@bp.post("/templates/<int:template_id>/edit/preview")
def preview(template_id: int):
    """The picture of the posted, unsaved template with the posted sample values; a template
    the renderer refuses answers 422 with its message and the path at fault."""
    owned(Template, template_id)
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("template"), dict):
        return _error(400, "invalid_request", "send {\"template\": {...}, \"variables\": {...}}")
    try:
        data, key, warnings, hit = _picture(body["template"], body.get("variables") or {},
                                            body.get("size") or None)
    except ApiError as exc:
        return _error(exc.status, exc.code, exc.message, exc.details)
    except RendererError as exc:
        return _error(422, exc.code, str(exc), {"path": exc.path})
    response = Response(data, mimetype="image/png")
    response.headers.update({"Cache-Control": "private, no-store", "ETag": key,
                             "Pixelmerge-Preview-Cache": "hit" if hit else "miss"})
    if warnings:
        response.headers["Pixelmerge-Warnings"] = json.dumps(warnings)[:4000]
    return response


def _picture(content: dict, values: Any, size: str | None) -> tuple[bytes, str, list, bool]:
    if not isinstance(values, dict):
        raise ApiError(400, "invalid_request", "variables: must be an object")
    tpl = validated_template(content)
    if size is not None and size not in tpl.sizes:
        raise ApiError(422, "unknown_size", f"size: no size named {size!r}",
                       details={"path": "size"})
    ws = workspace_id()
    variables, overrides = fold(tpl, {**tpl.samples(), **values}, None, None)
    names = asset_names(tpl, variables, overrides)
    rows = asset_rows(ws, names)
    key = renderer.render_key(tpl, variables, format="png", size=size, limits=limits(),
                              overrides=overrides, asset_digests=asset_digests(rows, names))
    cached = _cache_get((ws, key))
    if cached is not None:
        return cached[0], key, cached[1], True
    assets = WorkspaceAssets(ws, rows)
    result = renderer.render(tpl, variables, format="png", size=size, scale=1,
                             fetch=outbound().fetch, assets=assets, fonts=assets.fonts(),
                             limits=limits(), overrides=overrides)
    _cache_put((ws, key), (result.data, list(result.warnings)))
    return result.data, key, list(result.warnings), False


def _cache() -> OrderedDict:
    return current_app.extensions.setdefault("editor.previews", OrderedDict())


def _cache_get(key: tuple) -> tuple[bytes, list] | None:
    with _cache_lock:
        cache = _cache()
        hit = cache.get(key)
        if hit is not None:
            cache.move_to_end(key)
        return hit


def _cache_put(key: tuple, value: tuple[bytes, list]) -> None:
    with _cache_lock:
        cache = _cache()
        cache[key] = value
        while len(cache) > CACHE_ENTRIES or (
                len(cache) > 1 and sum(len(v[0]) for v in cache.values()) > CACHE_BYTES):
            cache.popitem(last=False)


def _error(status: int, code: str, message: str, details: dict | None = None):
    return jsonify({"error": {"code": code, "message": message,
                              "details": details or {}}}), status


# ---------------------------------------------------------------- save


@bp.post("/templates/<int:template_id>/edit/save")
def save_version(template_id: int):
    """A new version from the editor (JSON) or from the page's plain form without JavaScript;
    content the renderer refuses is not saved, and the answer names the path at fault."""
    row = owned(Template, template_id)
    as_json = request.is_json
    before = row.current_version
    try:
        content = _posted_content(as_json)
        if row.kind != "layered" or content.get("kind", "layered") != "layered":
            raise ApiError(422, "invalid_template", "kind: the editor saves layered templates",
                           details={"path": "kind"})
        save(content, row)
    except ApiError as exc:
        db.session.rollback()
        if as_json:
            return _error(exc.status, exc.code, exc.message, exc.details)
        flash(f"Not saved: {exc.message}", "error")
        return redirect(url_for(".edit", template_id=row.id))
    changed = row.current_version != before
    message = (f"Saved as version {row.current_version}." if changed else
               f"Nothing changed since version {row.current_version}; no new version.")
    base = request.get_json(silent=True).get("base_version") if as_json else None
    if changed and isinstance(base, int) and base < before:
        message += (f" It was edited from version {base}; version {before}, saved meanwhile, "
                    "stays in the history.")
    if as_json:
        return {"version": row.current_version, "created": changed, "message": message}
    flash(message, "success" if changed else "info")
    return redirect(url_for(".edit", template_id=row.id))


def _posted_content(as_json: bool) -> dict[str, Any]:
    if not as_json:
        return json_text(request.form.get("content", ""))
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("template"), dict):
        raise ApiError(400, "invalid_request", "send {\"template\": {...}}")
    return body["template"]


# ---------------------------------------------------------------- columns


@bp.get("/templates/<int:template_id>/edit/columns.json")
def columns(template_id: int):
    """The column names of the sheets this template is bound to, each with the variable that
    reads it (the binding's mapping, else the name that auto-maps to the column)."""
    from .bindings import read_header

    row = owned(Template, template_id)
    found: list[dict[str, str]] = []
    problems: list[str] = []
    for binding in _bindings(row):
        source = db.session.get(Source, binding.source_id)
        mapped = {column: variable for variable, column in (binding.mapping or {}).items()}
        try:
            header = [h.strip() for h in read_header(source) if h.strip()]
        except (SourceError, ApiError) as exc:
            header = list(mapped)
            problems.append(f"{source.name}: {exc.message}")
        for column in header:
            found.append({"column": column, "source": source.name,
                          "variable": mapped.get(column) or variable_name(column)})
    return {"columns": found, "problems": problems}


def variable_name(column: str) -> str:
    """``Product title`` -> ``product_title``: a name that auto-maps back to the column."""
    name = re.sub(r"\W+", "_", column.strip().lower()).strip("_")
    return name if name and not name[0].isdigit() else f"col_{name}"
