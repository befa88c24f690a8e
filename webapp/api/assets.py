"""Fonts and images uploaded for templates: ``POST /assets``, ``GET /assets``."""

from __future__ import annotations

import hashlib
import io
import re

from flask import Blueprint, current_app, request

from renderer import RendererError
from renderer.fonts import materialize_font

from ..errors import ApiError
from ..extensions import db
from ..models import Asset
from ..models.base import iso, utcnow
from ..openapi import operation
from ..rendering import forget_assets
from ..schemas import AssetList, AssetOut
from .common import current_workspace

bp = Blueprint("assets", __name__)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
IMAGE_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif",
                 "WEBP": "image/webp", "AVIF": "image/avif"}
FONT_MAGIC = {b"\x00\x01\x00\x00": "font/ttf", b"OTTO": "font/otf", b"true": "font/ttf",
              b"wOFF": "font/woff", b"wOF2": "font/woff2"}
UPLOAD = {"file": "a font (TTF, OTF, WOFF, WOFF2) or an image (PNG, JPEG, GIF, WebP, AVIF)",
          "name": "the name templates use (asset:<name>); default the file name",
          "family": "fonts: the family templates name (default: from the font)",
          "weight": "fonts: 1-1000 (default: from the font)"}


def asset_object(row: Asset) -> dict:
    return AssetOut.model_validate({
        "id": row.id, "name": row.name, "ref": f"asset:{row.name}", "kind": row.kind,
        "content_type": row.content_type, "size": row.size, "sha256": row.sha256,
        "family": row.family, "weight": row.weight, "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }).model_dump(mode="json")


def _upload() -> tuple[str, bytes]:
    # assets may be larger than other request bodies (a CJK font is 16 MB): this request's own
    # limit, with room for the form around the file
    request.max_content_length = current_app.config["MAX_ASSET_BYTES"] + 1024 * 1024
    if request.mimetype != "multipart/form-data":
        raise ApiError(415, "unsupported_media_type",
                       "upload assets as multipart form data with a 'file' field")
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ApiError(400, "invalid_request", "file: an uploaded file is required")
    data = upload.read()
    limit = current_app.config["MAX_ASSET_BYTES"]
    if len(data) > limit:
        raise ApiError(413, "payload_too_large", f"the file is {len(data):,} bytes; the limit "
                       f"is {limit:,}")
    if not data:
        raise ApiError(400, "invalid_request", "file: the uploaded file is empty")
    name = request.form.get("name") or upload.filename.rsplit("/", 1)[-1]
    if not NAME.fullmatch(name):
        raise ApiError(400, "invalid_request", "name: use letters, digits, '.', '_' and '-' "
                       "(at most 200), starting with a letter or digit")
    return name, data


def _image_type(data: bytes) -> str | None:
    """The picture's content type, None if it is none; pictures larger than renders may use
    (decompression bombs included) are refused from their header, before any pixel is decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt, (width, height) = image.format, image.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ApiError(422, "limit_exceeded", f"file: refused as a decompression bomb: "
                       f"{exc}") from None
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    limit = current_app.config["MAX_IMAGE_PIXELS"]
    if width * height > limit:
        raise ApiError(422, "limit_exceeded", f"file: the image is {width}x{height} = "
                       f"{width * height:,} pixels; the limit is {limit:,}")
    return IMAGE_FORMATS.get(fmt or "")


def _font_facts(data: bytes) -> tuple[str, str | None, int | None]:
    """(content type, family, weight) read from the font itself, which also proves it is one."""
    try:
        path = materialize_font(data, path="file")
    except RendererError as exc:
        raise ApiError(415, "unsupported_media_type", exc.message) from None
    from fontTools.ttLib import TTFont

    with TTFont(path, lazy=True) as font:  # lazy reads keep the file open until closed
        names = font["name"]
        family = names.getDebugName(16) or names.getDebugName(1)
        weight = font["OS/2"].usWeightClass if "OS/2" in font else None
    return FONT_MAGIC[data[:4]], family, weight


def _classify(data: bytes) -> tuple[str, str, str | None, int | None]:
    if data[:4] in FONT_MAGIC:
        content_type, family, weight = _font_facts(data)
        return "font", content_type, family, weight
    content_type = _image_type(data)
    if content_type is None:
        raise ApiError(415, "unsupported_media_type", "file: not a font (TTF, OTF, WOFF, "
                       "WOFF2) or an image (PNG, JPEG, GIF, WebP, AVIF)")
    return "image", content_type, None, None


def _font_overrides(kind: str, family: str | None, weight: int | None):
    if kind != "font":
        return family, weight
    family = request.form.get("family") or family
    weight_text = request.form.get("weight")
    if weight_text is not None:
        if not weight_text.isdigit() or not 1 <= int(weight_text) <= 1000:
            raise ApiError(400, "invalid_request", "weight: a number from 1 to 1000")
        weight = int(weight_text)
    return family, weight


@operation(bp, "POST", "/assets", summary="Upload a font or an image", tag="assets",
           scope="templates:write", responses={201: AssetOut}, multipart=UPLOAD,
           errors=(400, 401, 403, 413, 415))
def upload_asset():
    """Uploading a name again replaces the file it points at; templates pick it up on their
    next render."""
    workspace = current_workspace()
    name, data = _upload()
    kind, content_type, family, weight = _classify(data)
    family, weight = _font_overrides(kind, family, weight)
    sha = hashlib.sha256(data).hexdigest()
    current_app.extensions["storage"].put(f"assets/{workspace.id}/{sha}", data,
                                          content_type=content_type)
    row = db.session.scalar(db.select(Asset).where(Asset.workspace_id == workspace.id,
                                                   Asset.name == name))
    status = 200 if row is not None else 201
    row = row or Asset(workspace_id=workspace.id, name=name)
    row.kind, row.content_type, row.size, row.sha256 = kind, content_type, len(data), sha
    row.family, row.weight, row.updated_at = family, weight, utcnow()
    db.session.add(row)
    db.session.commit()
    forget_assets(workspace.id)
    return asset_object(row), status


@operation(bp, "GET", "/assets", summary="List assets", tag="assets", scope="templates:read",
           responses={200: AssetList})
def list_assets():
    rows = db.session.scalars(db.select(Asset).where(
        Asset.workspace_id == current_workspace().id).order_by(Asset.name)).all()
    return {"data": [asset_object(row) for row in rows]}
