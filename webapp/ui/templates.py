"""Templates: the gallery with thumbnails, a new template from a blank card or a starter (no file
needed), uploads (.json or .html), duplicates, versions and a preview with sample data. Saving
goes through the API module's own validation and versioning, so a template saved here is
exactly what ``POST /api/v1/templates`` would have saved."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from PIL import Image
from sqlalchemy import select
from wtforms import IntegerField, RadioField, SelectField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError

import renderer
from renderer import RendererError
from renderer.model import html_size_hint

from ..api.templates import json_text, save_version, upload_text, validated_template
from ..demo import DEMO_ASSETS, DEMO_DIR
from ..errors import ApiError
from ..extensions import db
from ..models import Asset, Template, TemplateVersion
from ..models.base import utcnow
from ..rendering import (
    WorkspaceAssets,
    asset_names,
    asset_rows,
    fold,
    forget_assets,
    forget_template,
    format_of,
    get_version,
    limits,
    load_version,
    outbound,
)
from ..storage import NotFound
from .common import field_error, options, owned, workspace_id

bp = Blueprint("templates", __name__)
THUMB = (480, 300)
PREVIEW_FORMATS = ("png", "jpeg", "webp", "gif", "pdf")


class UploadForm(FlaskForm):
    file = FileField("Template file", validators=[
        FileRequired("Choose a .json or .html file."),
        FileAllowed(["json", "html", "htm"], "Upload a .json template or an .html file.")],
        description="A JSON scene of layers (see docs/templates.md) or an HTML page.")
    name = StringField("Name", validators=[Length(max=200)],
                       description="Optional: the template's own name otherwise.")
    width = IntegerField("Width (HTML)", validators=[Optional(), NumberRange(1, 8000)])
    height = IntegerField("Height (HTML)", validators=[Optional(), NumberRange(1, 8000)])


def upload_form() -> UploadForm:
    return UploadForm()


def template_rows() -> list[Template]:
    return list(db.session.scalars(select(Template).where(
        Template.workspace_id == workspace_id(), Template.deleted_at.is_(None))
        .order_by(Template.updated_at.desc(), Template.id.desc())))


def card(row: Template) -> dict[str, Any]:
    tpl = load_version(get_version(row, None))
    return {"row": row, "tpl": tpl, "variables": list(tpl.variables),
            "thumbnail": url_for(".thumbnail", template_id=row.id, v=row.current_version),
            "edit": editor_url(row)}


def editor_url(row: Template) -> str | None:
    """The visual editor's page for a layered template, once the editor is installed."""
    from . import link_if

    return link_if("ui.editor.edit", template_id=row.id) if row.kind == "layered" else None


@bp.get("/templates")
def gallery():
    return render_template("templates/gallery.html", cards=[card(r) for r in template_rows()],
                           form=upload_form())


@bp.post("/templates")
def upload():
    form = upload_form()
    if form.validate_on_submit():
        row = _create_from_upload(form)
        if row is not None:
            flash(f"Uploaded “{row.name}”.", "success")
            return redirect(url_for(".detail", template_id=row.id))
    return render_template("templates/gallery.html", cards=[card(r) for r in template_rows()],
                           form=form, upload_open=True), 422


def _create_from_upload(form: UploadForm) -> Template | None:
    limit = current_app.config["UI_MAX_TEMPLATE_BYTES"]
    data = form.file.data.read(limit + 1)
    if len(data) > limit:
        form.file.errors = [f"The file is larger than the limit of {limit // 1024:,} KB."]
        return None
    try:
        return save(_content_of(form, data))
    except ApiError as exc:
        db.session.rollback()
        field_error(form, "file", f"{exc.message}" + _where(exc.details))
        return None


def _content_of(form: UploadForm, data: bytes) -> dict[str, Any]:
    """The template in an uploaded file, read as ``POST /api/v1/templates`` reads one."""
    filename = form.file.data.filename
    text = upload_text(data)
    if filename.lower().endswith(".json"):
        content = json_text(text)
    else:
        size = html_size_hint(text)  # the file's pixelmerge:size meta tag, else 1200 x 630
        content = {"kind": "html", "name": filename.rsplit(".", 1)[0], "html": text,
                   "width": form.width.data or size["width"],
                   "height": form.height.data or size["height"]}
    if form.name.data and form.name.data.strip():
        content["name"] = form.name.data.strip()
    return content


def _where(details: dict) -> str:
    path = details.get("path")
    return f" (at {path})" if path and path != "$" else ""


SIZES = {"social": ("Social card", 1200, 630), "square": ("Square", 1080, 1080),
         "story": ("Story", 1080, 1920)}
STARTERS = {  # bundled demo templates that make sense in the visual editor (layered, one frame)
    "card": ("card.json", "Product card",
             "A photo, a headline, a price badge and a logo, in three sizes."),
    "world": ("world.json", "Hello, world",
              "Text in many scripts: Arabic, Hebrew, CJK, Devanagari and emoji."),
}
BLANK = ("Blank card", "A background and a headline bound to a title variable; "
                       "add text, pictures, shapes and QR codes in the editor.")


class NewTemplateForm(FlaskForm):
    start = RadioField("Start from", default="blank", choices=options([
        ("blank", BLANK[0]), *((key, label) for key, (_, label, _) in STARTERS.items())]))
    preset = SelectField("Size", default="social", choices=options([
        *((key, f"{label} · {w}×{h}") for key, (label, w, h) in SIZES.items()),
        ("custom", "Custom size")]))
    width = StringField("Width (px)")  # read only for a custom size: text, parsed below
    height = StringField("Height (px)")
    name = StringField("Name", validators=[DataRequired("Give the template a name."),
                                           Length(max=200)],
                       description="What the gallery, bindings and renders call it.")

    def blank_custom(self) -> bool:
        return self.start.data == "blank" and self.preset.data == "custom"

    def validate_preset(self, field: SelectField) -> None:
        if self.start.data == "blank" and field.data in SIZES:
            limit = current_app.config["MAX_CANVAS"]
            _, width, height = SIZES[field.data]
            if max(width, height) > limit:
                raise ValidationError(f"Larger than this server's limit of {limit:,} px a side; "
                                      "pick another size or a custom one.")

    def validate_width(self, field: StringField) -> None:
        self._side(field)

    def validate_height(self, field: StringField) -> None:
        self._side(field)

    def _side(self, field: StringField) -> None:
        if not self.blank_custom():
            return
        limit = current_app.config["MAX_CANVAS"]
        text = (field.data or "").strip()
        if not text:
            raise ValidationError(f"Enter a size from 1 to {limit:,} px.")
        if not text.lstrip("-").isdigit():
            raise ValidationError("Enter a whole number of pixels.")
        if not 1 <= int(text) <= limit:
            raise ValidationError(f"Must be from 1 to {limit:,} px (this server's limit).")

    def size(self) -> tuple[int, int]:
        if self.preset.data == "custom":
            return int(self.width.data), int(self.height.data)
        return SIZES[self.preset.data][1:]


def _new_page(form: NewTemplateForm, status: int = 200):
    starters = {"blank": BLANK[1], **{key: text for key, (_, _, text) in STARTERS.items()}}
    return render_template("templates/new.html", form=form, starters=starters,
                           limit=current_app.config["MAX_CANVAS"]), status


@bp.get("/templates/new")
def new():
    form = NewTemplateForm()
    if request.args.get("start") in STARTERS:
        form.start.data = request.args["start"]
    return _new_page(form)


@bp.post("/templates/new")
def create():
    form = NewTemplateForm()
    if form.validate_on_submit():
        row = _create_new(form)
        if row is not None:
            flash(f"Made “{row.name}”. Change it here, then save it as a new version.",
                  "success")
            return redirect(editor_url(row) or url_for(".detail", template_id=row.id))
    return _new_page(form, 422)


def _create_new(form: NewTemplateForm) -> Template | None:
    name = form.name.data.strip()
    if form.start.data == "blank":
        content = blank_card(name, *form.size())
    else:
        content = {**json.loads((DEMO_DIR / STARTERS[form.start.data][0]).read_text()),
                   "name": name}
    try:
        brought = _bring_assets(content)
        row = save(content)
    except ApiError as exc:
        db.session.rollback()
        field_error(form, (exc.details or {}).get("path"), exc.message, fallback="name")
        return None
    if brought:
        forget_assets(row.workspace_id)
    return row


def blank_card(name: str, width: int, height: int) -> dict[str, Any]:
    """Something to start from that shows at once: a background and a headline bound to
    ``title``, scaled to the canvas."""
    side = min(width, height)
    margin = round(side * 0.08)
    size = max(12, round(side * 0.1))
    return {
        "kind": "layered", "name": name, "width": width, "height": height,
        "background": "#0f172a",
        "variables": {"title": {"type": "text", "sample": "Your headline here"}},
        "layers": [
            {"name": "accent", "type": "rect", "x": margin, "y": margin,
             "width": max(1, round(width * 0.12)), "height": max(1, round(side * 0.015)),
             "fill": "#f59e0b"},
            {"name": "title", "type": "text", "x": margin, "y": margin + round(side * 0.05),
             "width": max(1, width - 2 * margin), "height": max(1, round(height * 0.45)),
             "text": "{{ title }}", "size": size, "min_size": max(8, size // 3),
             "fit": "shrink", "max_lines": 3, "weight": 700, "color": "#ffffff",
             "line_height": 1.15},
        ],
    }


def _bring_assets(content: dict[str, Any]) -> bool:
    """Add the bundled pictures a starter names (``asset:photo.jpg``) to the workspace, unless
    it has its own by that name; True when any was added (the commit is the caller's)."""
    text = json.dumps(content)
    wanted = {name for name in DEMO_ASSETS if f"asset:{name}" in text}
    if not wanted:
        return False
    ws = workspace_id()
    missing = wanted - set(db.session.scalars(select(Asset.name).where(
        Asset.workspace_id == ws, Asset.name.in_(wanted))))
    storage = current_app.extensions["storage"]
    for name in sorted(missing):
        data = (DEMO_DIR / name).read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        storage.put(f"assets/{ws}/{sha}", data, content_type=DEMO_ASSETS[name])
        db.session.add(Asset(workspace_id=ws, name=name, kind="image",
                             content_type=DEMO_ASSETS[name], size=len(data), sha256=sha))
    return bool(missing)


def save(content: dict[str, Any], row: Template | None = None) -> Template:
    """A new template, or a new version of ``row`` (none when the content is unchanged)."""
    tpl = validated_template(content)
    if row is None:
        row = Template(workspace_id=workspace_id(), name=tpl.name, kind=tpl.kind,
                       current_version=0)
        db.session.add(row)
    elif get_version(row, None).digest == tpl.digest:
        return row
    save_version(row, content, tpl)
    db.session.commit()
    forget_template(row.id)
    return row


@bp.get("/templates/<int:template_id>")
def detail(template_id: int):
    row = owned(Template, template_id)
    number = request.args.get("version", type=int)
    version = get_version(row, number)
    tpl = load_version(version)
    values = {name: request.args.get(f"var.{name}", _text(sample))
              for name, sample in tpl.samples().items()}
    for name in tpl.variables:
        values.setdefault(name, request.args.get(f"var.{name}", ""))
    query = {"version": version.version, "size": request.args.get("size", ""),
             **{f"var.{k}": v for k, v in values.items()}}
    return render_template(
        "templates/detail.html", row=row, tpl=tpl, version=version, values=values,
        declared=tpl.source.get("variables") or {}, size=request.args.get("size", ""),
        preview_url=url_for(".preview", template_id=row.id, **query),
        versions=list(reversed(row.versions)), edit=editor_url(row),
        content=json.dumps(json.loads(version.content), indent=2, ensure_ascii=False))


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


@bp.get("/templates/<int:template_id>/preview")
def preview(template_id: int):
    """The picture with the sample data and the values given (``var.<name>``); nothing is
    stored or counted."""
    row = owned(Template, template_id)
    tpl = load_version(get_version(row, request.args.get("version", type=int)))
    given = {key[4:]: value for key, value in request.args.items()
             if key.startswith("var.") and value != ""}
    fmt = request.args.get("format", "png")
    try:
        result = picture(tpl, given, fmt=fmt if fmt in PREVIEW_FORMATS else "png",
                         size=request.args.get("size") or None)
    except (RendererError, ApiError) as exc:
        text = exc.message if isinstance(exc, ApiError) else str(exc)
        return Response(text, status=422, mimetype="text/plain")
    response = Response(result.data, mimetype=result.mime)
    response.headers["Cache-Control"] = "private, no-store"
    return response


def picture(tpl: renderer.Template, values: dict[str, Any], *, fmt: str = "png",
            size: str | None = None) -> renderer.Rendered:
    """The template rendered with its samples and ``values``, as the API's preview does."""
    variables, overrides = fold(tpl, {**tpl.samples(), **values}, None, None)
    assets = WorkspaceAssets(workspace_id(), asset_rows(
        workspace_id(), asset_names(tpl, variables, overrides)))
    return renderer.render(tpl, variables, format=format_of(fmt), size=size, scale=1,
                           fetch=outbound().fetch, assets=assets, fonts=assets.fonts(),
                           limits=limits(), overrides=overrides)


@bp.get("/templates/<int:template_id>/thumbnail.webp")
def thumbnail(template_id: int):
    """A small picture of the current version with its sample data, made once and kept."""
    row = owned(Template, template_id)
    version = get_version(row, request.args.get("v", type=int))
    storage = current_app.extensions["storage"]
    name = f"ui/thumbnails/{row.workspace_id}/{version.digest}.webp"
    try:
        data = storage.get(name)
    except NotFound:
        data = _make_thumbnail(load_version(version))
        if data is None:
            return redirect(url_for("static", filename="broken.svg"))
        storage.put(name, data, content_type="image/webp")
    response = Response(data, mimetype="image/webp")
    response.headers["Cache-Control"] = "private, max-age=86400"
    return response


def _make_thumbnail(tpl: renderer.Template) -> bytes | None:
    try:
        result = picture(tpl, {}, fmt="png")
    except (RendererError, ApiError):
        return None  # a sample that cannot render (a remote image offline): no thumbnail
    image = Image.open(io.BytesIO(result.data))
    image.thumbnail(THUMB)
    out = io.BytesIO()
    image.save(out, "WEBP", quality=82)
    return out.getvalue()


@bp.post("/templates/<int:template_id>/duplicate")
def duplicate(template_id: int):
    row = owned(Template, template_id)
    content = json.loads(get_version(row, None).content)
    content["name"] = f"{row.name} (copy)"[:200]
    copy = save(content)
    flash(f"Made “{copy.name}”.", "success")
    return redirect(url_for(".detail", template_id=copy.id))


@bp.post("/templates/<int:template_id>/versions/<int:number>/restore")
def restore(template_id: int, number: int):
    row = owned(Template, template_id)
    before = row.current_version
    save(json.loads(get_version(row, number).content), row)
    if row.current_version == before:
        flash(f"Version {number} is the same as the current one; nothing changed.", "info")
    else:
        flash(f"Version {number} is now version {row.current_version}.", "success")
    return redirect(url_for(".detail", template_id=row.id))


@bp.get("/templates/<int:template_id>/versions/<int:number>.json")
def download(template_id: int, number: int):
    row = owned(Template, template_id)
    version = get_version(row, number)
    return Response(version.content, mimetype="application/json", headers={
        "Content-Disposition": f'attachment; filename="template-{row.id}-v{number}.json"'})


@bp.post("/templates/<int:template_id>/content")
def replace(template_id: int):
    """Save pasted JSON as a new version (the quick fix; the editor is the comfortable way)."""
    row = owned(Template, template_id)
    try:
        save(json_text(request.form.get("content", "")), row)
    except ApiError as exc:
        db.session.rollback()
        flash(f"Not saved: {exc.message}{_where(exc.details)}", "error")
        return redirect(url_for(".detail", template_id=row.id, _anchor="source"))
    flash(f"Saved as version {row.current_version}.", "success")
    return redirect(url_for(".detail", template_id=row.id))


@bp.post("/templates/<int:template_id>/delete")
def delete(template_id: int):
    row = owned(Template, template_id)
    row.deleted_at = utcnow()
    db.session.commit()
    forget_template(row.id)
    flash(f"Deleted “{row.name}”. Its renders stay at their URLs.", "info")
    return redirect(url_for(".gallery"))


def choices() -> list[tuple[int, str]]:
    """(id, name) of the workspace's templates, for the other areas' forms."""
    return [(r.id, r.name) for r in template_rows()]


def version_numbers(row: Template) -> list[int]:
    return list(db.session.scalars(select(TemplateVersion.version).where(
        TemplateVersion.template_id == row.id).order_by(TemplateVersion.version.desc())))
