"""Templates and their versions: ``/templates``, ``/templates/{id}``, ``/versions``,
``/preview``."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, request

import renderer
from renderer import RendererError
from renderer.model import html_size_hint  # the rule `pixelmerge validate` applies to files

from ..errors import ApiError
from ..extensions import db
from ..models import Template, TemplateVersion
from ..models.base import iso, utcnow
from ..openapi import operation
from ..rendering import (
    WorkspaceAssets,
    asset_names,
    asset_rows,
    fold,
    forget_template,
    format_of,
    get_template,
    get_version,
    limits,
    load_version,
    outbound,
)
from ..schemas import (
    PreviewBody,
    TemplateContent,
    TemplateList,
    TemplateOut,
    TemplateQuery,
    VersionList,
)
from .common import current_workspace

bp = Blueprint("templates", __name__)
UPLOAD = {"file": "a .json template or an .html file", "name": "optional name",
          "width": "optional width for .html", "height": "optional height for .html"}


def template_object(row: Template, version: TemplateVersion) -> dict[str, Any]:
    tpl = load_version(version)
    return TemplateOut.model_validate({
        "id": row.id, "name": row.name, "kind": tpl.kind, "public": row.public,
        "version": version.version, "width": tpl.width, "height": tpl.height,
        "variables": tpl.source.get("variables") or {}, "sizes": list(tpl.sizes),
        "content": json.loads(version.content),
        "created_at": iso(row.created_at), "updated_at": iso(row.updated_at),
    }).model_dump(mode="json")


def _content() -> dict[str, Any]:
    """The template from a JSON body or a multipart upload (.json or .html)."""
    if request.is_json:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise ApiError(400, "invalid_json", "the body must be a JSON object: the template")
        return data
    if request.mimetype == "multipart/form-data":
        return _uploaded()
    raise ApiError(415, "unsupported_media_type", "send the template as JSON, or as multipart "
                   "form data with a .json or .html 'file'")


def _uploaded() -> dict[str, Any]:
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ApiError(400, "invalid_request", "file: a .json or .html file is required")
    filename = upload.filename.lower()
    if not filename.endswith((".html", ".htm", ".json")):
        raise ApiError(415, "unsupported_media_type", "file: upload a .json or .html file")
    text = upload_text(upload.read())
    if filename.endswith(".json"):
        content = json_text(text)
    else:
        size = html_size_hint(text)  # the file's pixelmerge:size meta tag, else 1200 x 630
        content = {"kind": "html", "name": upload.filename.rsplit(".", 1)[0], "html": text,
                   "width": _form_int("width", size["width"]),
                   "height": _form_int("height", size["height"])}
    if request.form.get("name"):
        content["name"] = request.form["name"]
    return content


def upload_text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")  # editors on Windows like to start with a BOM
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_request", f"file: not UTF-8 text (byte {exc.start} "
                       f"is invalid)") from None


def _form_int(name: str, default: int) -> int:
    value = request.form.get(name)
    if value is None:
        return default
    if not value.isdigit():
        raise ApiError(400, "invalid_request", f"{name}: must be a whole number")
    return int(value)


def json_text(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(422, "invalid_template", f"malformed JSON at line {exc.lineno} column "
                       f"{exc.colno}: {exc.msg}", details={"path": "$"}) from None
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_template", "a template must be a JSON object")
    return data


def validated_template(content: dict[str, Any]) -> renderer.Template:
    try:
        return renderer.load_template(content, limits=limits())
    except RendererError as exc:
        raise ApiError(422, exc.code, str(exc), details={"path": exc.path}) from None


def save_version(row: Template, content: dict[str, Any],
                  tpl: renderer.Template) -> TemplateVersion:
    number = (row.current_version or 0) + 1 if row.id else 1
    version = TemplateVersion(template=row, version=number, digest=tpl.digest,
                              content=json.dumps(content, ensure_ascii=False))
    row.current_version, row.updated_at = number, utcnow()
    row.name, row.kind, row.public = tpl.name, tpl.kind, bool(content.get("public", False))
    db.session.add(version)
    return version


@operation(bp, "GET", "/templates", summary="List templates", tag="templates",
           scope="templates:read", responses={200: TemplateList})
def list_templates():
    rows = db.session.scalars(db.select(Template).where(
        Template.workspace_id == current_workspace().id, Template.deleted_at.is_(None))
        .order_by(Template.id.desc())).all()
    return {"data": [template_object(row, get_version(row, None)) for row in rows]}


@operation(bp, "POST", "/templates", summary="Create a template", tag="templates",
           scope="templates:write", responses={201: TemplateOut}, multipart=UPLOAD,
           doc_body=TemplateContent,
           description="The body is the template itself (docs/templates.md) as JSON, or "
                       "multipart form data with a .json or .html file.",
           errors=(400, 401, 403, 413, 415, 422))
def create_template():
    content = _content()
    tpl = validated_template(content)
    row = Template(workspace_id=current_workspace().id, name=tpl.name, kind=tpl.kind,
                   current_version=0)
    db.session.add(row)
    version = save_version(row, content, tpl)
    db.session.commit()
    forget_template(row.id)
    return template_object(row, version), 201


@operation(bp, "GET", "/templates/<int:template_id>", summary="Get a template", tag="templates",
           scope="templates:read", query=TemplateQuery, responses={200: TemplateOut},
           errors=(401, 403, 404))
def get_template_view(template_id: int, query: TemplateQuery):
    row = get_template(current_workspace().id, template_id)
    return template_object(row, get_version(row, query.version))


@operation(bp, "PUT", "/templates/<int:template_id>", summary="Save a new version",
           tag="templates", scope="templates:write", responses={200: TemplateOut},
           multipart=UPLOAD, doc_body=TemplateContent, errors=(400, 401, 403, 404, 415, 422))
def update_template(template_id: int):
    """Every save creates an immutable version; saving unchanged content creates none."""
    row = get_template(current_workspace().id, template_id)
    content = _content()
    tpl = validated_template(content)
    current = get_version(row, None)
    if current.digest == tpl.digest:
        return template_object(row, current)
    version = save_version(row, content, tpl)
    db.session.commit()
    forget_template(row.id)
    return template_object(row, version)


@operation(bp, "DELETE", "/templates/<int:template_id>", summary="Delete a template",
           tag="templates", scope="templates:write", responses={204: None},
           errors=(401, 403, 404))
def delete_template(template_id: int):
    """Renders already made stay available at their /r/ URLs."""
    row = get_template(current_workspace().id, template_id)
    row.deleted_at = utcnow()
    db.session.commit()
    forget_template(row.id)
    return Response(status=204)


@operation(bp, "GET", "/templates/<int:template_id>/versions", summary="List versions",
           tag="templates", scope="templates:read", responses={200: VersionList},
           errors=(401, 403, 404))
def list_versions(template_id: int):
    row = get_template(current_workspace().id, template_id)
    return {"data": [{"version": v.version, "digest": v.digest, "created_at": iso(v.created_at)}
                     for v in reversed(row.versions)]}


@operation(bp, "POST", "/templates/<int:template_id>/preview", summary="Preview with data",
           tag="templates", scope="templates:read", body=PreviewBody,
           responses={200: "image"}, produces=("image/png", "image/jpeg", "image/webp",
                                               "image/avif", "image/gif", "application/pdf"),
           errors=(400, 401, 403, 404, 422))
def preview(template_id: int, body: PreviewBody):
    """Renders the template (or unsaved ``template`` content) with its sample data merged with
    the given values and returns the picture itself. Nothing is stored or counted."""
    workspace = current_workspace()
    row = get_template(workspace.id, template_id)
    tpl = validated_template(body.template) if body.template else load_version(
        get_version(row, body.version))
    variables, overrides = fold(tpl, {**tpl.samples(), **(body.variables or {})}, body.layers,
                                body.modifications)
    assets = WorkspaceAssets(workspace.id, asset_rows(workspace.id,
                                                      asset_names(tpl, variables, overrides)))
    result = renderer.render(
        tpl, variables, format=format_of(body.format), size=body.size, scale=body.scale,
        quality=body.quality, transparent=body.transparent, fetch=outbound().fetch,
        assets=assets, fonts=assets.fonts(), limits=limits(), overrides=overrides)
    response = Response(result.data, mimetype=result.mime)
    response.headers["Cache-Control"] = "no-store"
    if result.warnings:
        response.headers["Pixelmerge-Warnings"] = json.dumps(result.warnings)[:4000]
    return response
