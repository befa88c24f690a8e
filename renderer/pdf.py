"""PDF output through WeasyPrint, and the few PDF operations the rest of the product needs.

Two ways in. :func:`paint_pdf` draws a laid-out :class:`~renderer.scene.Scene` — the same one
the raster painter draws — as HTML with every item absolutely positioned, so the PDF shows the
same lines at the same sizes with text kept as text and shapes as vectors. :func:`render_html`
lays out an HTML template (SPEC 3.3). Both load every resource through one URL fetcher that
refuses local files and sends remote URLs to the injected, guarded ``fetch``.

:func:`rasterize_pdf`, :func:`merge_pdfs` and :func:`pdf_text` use pdfium.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from html import escape
from pathlib import Path
from urllib.parse import unquote, unquote_to_bytes, urlsplit
from urllib.request import url2pathname

import pypdfium2 as pdfium
from fontTools.ttLib import TTFont
from PIL import Image, ImageChops, ImageDraw, ImageFilter
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

from . import fonts
from .errors import ResourceError
from .scene import (
    Color,
    Common,
    FontFace,
    ImageItem,
    Item,
    Paint,
    QRItem,
    Run,
    Scene,
    ShapeItem,
    TextItem,
)
from .text import clusters, measure

Loader = Callable[[str], bytes]

PX_PER_PT = 96 / 72
MEMORY_SCHEME = "pixelmerge-memory"  # images made while painting, served from a dict
USE_TYPO_METRICS = 1 << 7  # OS/2 fsSelection bit
# Stroke and shadow layers are bitmaps (see text_effects_image); drawing them at twice the
# output resolution keeps their edges clean when a PDF viewer zooms in.
EFFECTS_OVERSAMPLE = 2

# pdfium is not thread-safe; the web app may rasterize previews from several threads.
_PDFIUM_LOCK = threading.Lock()
_WEASYPRINT_LOGGER = logging.getLogger("weasyprint")


# --- public API -------------------------------------------------------------------------------


def paint_pdf(scene: Scene, *, fetch_files: Iterable[str] = ()) -> bytes:
    """A one-page PDF of exactly ``scene.width`` x ``scene.height`` CSS px (1 px = 1/96 in).

    ``fetch_files`` names local files, besides the scene's own fonts, that may be loaded."""
    document = _SceneDocument()
    body = document.body(scene)
    fetcher = _Fetcher(files=[*document.font_files(), *fetch_files], memory=document.memory)
    stylesheets = [document.font_css(), _page_css(scene.width, scene.height)]
    return _write_pdf(body, stylesheets, fetcher, base_url=None)


def render_html(html: str, css: str, *, width: int, height: int, fetch: Loader | None,
                assets: Loader | None = None, base_url: str | None = None) -> bytes:
    """A one-page PDF of ``width`` x ``height`` px from an (already expression-rendered) HTML
    template. ``data:`` URIs load locally, ``asset:<name>`` through ``assets``, ``http(s)``
    through ``fetch``; anything else, ``file:`` included, raises :class:`ResourceError`."""
    fetcher = _Fetcher(fetch=fetch, assets=assets)
    # Body margins go first so that the template may set its own; the page box goes last so
    # that it may not.
    stylesheets = ["html, body { margin: 0; padding: 0 }", css, _page_css(width, height)]
    return _write_pdf(html, stylesheets, fetcher, base_url=base_url)


def rasterize_pdf(pdf: bytes, *, scale: float = 1.0, page: int = 0,
                  transparent: bool = False) -> Image.Image:
    """One page at 96 dpi x ``scale``: RGBA over a transparent canvas, else RGB over white.

    The image is ``round(width * scale)`` x ``round(height * scale)`` px, the size the layered
    painter gives a scaled scene (pdfium itself rounds fractional sizes up)."""
    fill = (255, 255, 255, 0) if transparent else (255, 255, 255, 255)
    with _open_pdf(pdf) as document:
        pdf_page = document[page]
        width, height = (points * PX_PER_PT * scale for points in pdf_page.get_size())
        bitmap = pdf_page.render(scale=scale * PX_PER_PT, fill_color=fill, rev_byteorder=True)
        # The PIL image may share pdfium's buffer: copy it out before the bitmap is freed.
        image = bitmap.to_pil().crop((0, 0, round(width), round(height)))
        image = image.convert("RGBA" if transparent else "RGB")
        bitmap.close()
    return image


def merge_pdfs(documents: Sequence[bytes]) -> bytes:
    """One PDF with a page per input page, in order."""
    if not documents:
        raise ValueError("merge_pdfs needs at least one document")
    with _PDFIUM_LOCK:
        merged = pdfium.PdfDocument.new()
        try:
            for data in documents:
                source = pdfium.PdfDocument(data)
                try:
                    merged.import_pages(source)
                finally:
                    source.close()
            buffer = io.BytesIO()
            merged.save(buffer)
        finally:
            merged.close()
    return buffer.getvalue()


def pdf_text(pdf: bytes) -> list[str]:
    """Each page's text as pdfium extracts it (what copy-paste and search see), "\\n"-separated
    lines."""
    pages = []
    with _open_pdf(pdf) as document:
        for page in document:
            textpage = page.get_textpage()
            pages.append(textpage.get_text_range().replace("\r\n", "\n"))
            textpage.close()
    return pages


def emoji_image(run: Run) -> Image.Image:
    """A colour-emoji run drawn by Pillow from its bitmap strike, scaled to ``run.size`` and
    stretched to ``run.width``. Its top sits :func:`emoji_ascent` above the baseline."""
    image, _ = fonts.emoji_image(run.text, run.face, run.size)
    width = max(1, round(run.width))
    if image.width != width:
        image = image.resize((width, image.height), Image.Resampling.LANCZOS)
    return image


def emoji_ascent(run: Run) -> float:
    """How far above the baseline the top of :func:`emoji_image` sits."""
    return fonts.emoji_image(run.text, run.face, run.size)[1]


def text_effects_image(item: TextItem, oversample: int = EFFECTS_OVERSAMPLE
                       ) -> tuple[Image.Image, float]:
    """The shadow and stroke of a text item, drawn by Pillow as the raster painter draws them.

    WeasyPrint can neither stroke text nor cast text shadows, so both go under the real (vector,
    selectable) text as one bitmap. Returns the image, ``oversample`` times the output
    resolution, and its margin: the image's top-left corner is at (-margin, -margin) in the box.
    """
    margin = _effects_margin(item)
    size = (round((item.common.box.width + 2 * margin) * oversample),
            round((item.common.box.height + 2 * margin) * oversample))
    silhouette = _silhouette(item, size, margin, oversample)
    layer = Image.new("RGBA", size)
    if item.shadow:
        layer = _shadow_layer(item, silhouette, oversample)
    if item.stroke and item.stroke_width > 0:
        stroke = Image.new("RGBA", size, item.stroke.rgba)
        stroke.putalpha(ImageChops.multiply(silhouette, stroke.getchannel("A")))
        layer.alpha_composite(stroke)
    return layer, margin


# --- resources --------------------------------------------------------------------------------


class _Fetcher(URLFetcher):
    """WeasyPrint's only way to the outside world.

    Every refusal is also kept in ``errors``: WeasyPrint catches some exceptions itself (inside
    SVG images, for one), and a render whose resources failed must fail, not look half right."""

    def __init__(self, *, fetch: Loader | None = None, assets: Loader | None = None,
                 files: Iterable[str] = (), memory: dict[str, tuple[bytes, str]] | None = None):
        super().__init__(fail_on_errors=True)
        self._remote = fetch
        self._assets = assets
        self._files = {os.path.realpath(path) for path in files}
        self._memory = memory or {}
        self.errors: list[ResourceError] = []

    def fetch(self, url: str, headers: dict | None = None) -> URLFetcherResponse:
        try:
            data, mime = self._load(url)
        except Exception as exc:
            error = exc if isinstance(exc, ResourceError) else _refusal(url, _reason(exc))
            self.errors.append(error)
            raise error from None
        return URLFetcherResponse(url, data, {"Content-Type": mime} if mime else None)

    def _load(self, url: str) -> tuple[bytes, str | None]:
        if url in self._memory:
            return self._memory[url]
        scheme = url.partition(":")[0].lower()
        if scheme == "data":
            return _decode_data_url(url)
        if scheme == "asset":
            return self._load_asset(url), None
        if scheme in ("http", "https"):
            return self._load_remote(url), None
        if scheme == "file":
            return self._load_file(url), None
        raise _refusal(url, f"the {scheme}: scheme is not allowed")

    def _load_asset(self, url: str) -> bytes:
        if self._assets is None:
            raise _refusal(url, "there is no asset store")
        return self._assets(unquote(url[len("asset:"):]))

    def _load_remote(self, url: str) -> bytes:
        if self._remote is None:
            raise _refusal(url, "remote resources are not allowed here (no fetcher)")
        return self._remote(url)

    def _load_file(self, url: str) -> bytes:
        path = os.path.realpath(url2pathname(urlsplit(url).path))
        if path not in self._files:
            raise _refusal(url, "local files are not allowed")
        return Path(path).read_bytes()


def _refusal(url: str, reason: str) -> ResourceError:
    shown = url if len(url) <= 200 else url[:200] + "…"  # data: URIs can be megabytes
    return ResourceError(f"cannot load {shown}: {reason}")


def _reason(exc: Exception) -> str:
    return getattr(exc, "message", None) or str(exc) or type(exc).__name__


def _decode_data_url(url: str) -> tuple[bytes, str]:
    header, comma, payload = url[len("data:"):].partition(",")
    if not comma:
        raise _refusal(url, "malformed data: URI")
    mime = header.split(";")[0] or "text/plain"
    if not header.endswith(";base64"):
        return unquote_to_bytes(payload), mime
    try:
        return base64.b64decode(unquote_to_bytes(payload)), mime
    except binascii.Error as exc:
        raise _refusal(url, f"bad base64: {exc}") from None


# --- WeasyPrint -------------------------------------------------------------------------------


def _page_css(width: int, height: int) -> str:
    return f"@page {{ size: {width}px {height}px; margin: 0 }}"


def _write_pdf(html: str, stylesheets: list[str], fetcher: _Fetcher,
               base_url: str | None) -> bytes:
    with _resource_errors_logged() as logged:
        try:
            pdf = _weasyprint(html, stylesheets, fetcher, base_url)
        except FatalURLFetchingError as exc:
            cause = exc.__cause__
            raise cause if isinstance(cause, ResourceError) else ResourceError(str(exc)) \
                from None
    failures = [*fetcher.errors, *map(ResourceError, logged)]
    if failures:
        raise failures[0]
    return pdf


def _weasyprint(html: str, stylesheets: list[str], fetcher: _Fetcher,
                base_url: str | None) -> bytes:
    # A fresh font configuration per render: one template's or scene's @font-face rules must
    # never leak into another's.
    font_config = FontConfiguration()
    sheets = [CSS(string=css, base_url=base_url, url_fetcher=fetcher, font_config=font_config)
              for css in stylesheets]
    document = HTML(string=html, base_url=base_url, url_fetcher=fetcher).render(
        stylesheets=sheets, font_config=font_config)
    # Content that overflows the page would make more pages: the output is the first.
    return document.copy(document.pages[:1]).write_pdf()


class _ErrorLog(logging.Handler):
    """WeasyPrint logs (rather than raises) resources it fetched but could not use, such as
    undecodable images; those are errors of the render on this thread."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.messages.append(_log_message(record))


def _log_message(record: logging.LogRecord) -> str:
    """The record's message with the underlying reason, which WeasyPrint's own wrapper
    exceptions often leave empty, and without megabytes of data: URI."""
    message = record.getMessage()
    errors = [arg for arg in record.args or () if isinstance(arg, BaseException)]
    if errors and errors[0].__cause__ is not None:
        message = f"{message.rstrip(': ')}: {errors[0].__cause__}"
    return message if len(message) <= 300 else message[:300] + "…"


@contextmanager
def _resource_errors_logged() -> Iterator[list[str]]:
    handler = _ErrorLog()
    _WEASYPRINT_LOGGER.addHandler(handler)
    try:
        yield handler.messages
    finally:
        _WEASYPRINT_LOGGER.removeHandler(handler)


# --- pdfium -----------------------------------------------------------------------------------


@contextmanager
def _open_pdf(pdf: bytes) -> Iterator[pdfium.PdfDocument]:
    with _PDFIUM_LOCK:
        document = pdfium.PdfDocument(pdf)
        try:
            yield document
        finally:
            document.close()


# --- fonts ------------------------------------------------------------------------------------


def face_file(face: FontFace) -> str:
    """A file holding just this face, for WeasyPrint.

    An @font-face rule cannot pick a face inside a .ttc collection, and fontconfig would give
    every face of the file the rule's family; so collection faces are copied out, once, into the
    font cache (the tables are copied as they are, which takes well under a second)."""
    with open(face.path, "rb") as file:
        if file.read(4) != b"ttcf":
            return face.path
    stat = os.stat(face.path)
    key = f"{os.path.realpath(face.path)}\0{face.index}\0{stat.st_size}\0{stat.st_mtime_ns}"
    target = fonts.font_cache_dir() / f"face-{hashlib.sha256(key.encode()).hexdigest()[:32]}"
    if not target.exists():
        buffer = io.BytesIO()
        with TTFont(face.path, fontNumber=face.index, lazy=True) as font:
            font.save(buffer)
        partial = target.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        partial.write_bytes(buffer.getvalue())
        partial.replace(target)  # atomic: a concurrent render never reads half a font
    return str(target)


@lru_cache(maxsize=256)
def vertical_metrics(face: FontFace) -> tuple[float, float]:
    """(ascent, descent) per em, both positive, chosen the way HarfBuzz chooses them — Pango
    (so WeasyPrint) places a line's baseline at its top plus this ascent."""
    with TTFont(face.path, fontNumber=face.index, lazy=True) as font:
        upem = font["head"].unitsPerEm
        os2 = font.get("OS/2")
        if os2 is not None and os2.fsSelection & USE_TYPO_METRICS:
            ascent, descent = os2.sTypoAscender, os2.sTypoDescender
        elif "hhea" in font:
            ascent, descent = font["hhea"].ascent, font["hhea"].descent
        else:  # HarfBuzz's own fallback when a font has no metrics at all
            ascent, descent = 0.8 * upem, -0.2 * upem
    return abs(ascent) / upem, abs(descent) / upem


def _file_url(face: FontFace) -> str:
    return Path(face_file(face)).as_uri()


def family_name(face: FontFace) -> str:
    """One generated family per face, so that each span names exactly the face the layout
    chose and nothing can match it by accident."""
    digest = hashlib.sha1(f"{face.path}\0{face.index}".encode()).hexdigest()[:16]
    return f"pm-{digest}"


# --- the scene as HTML ------------------------------------------------------------------------


class _SceneDocument:
    """Turns a scene into HTML, collecting the fonts it names and the images it embeds."""

    def __init__(self) -> None:
        self.faces: dict[FontFace, str] = {}
        self.memory: dict[str, tuple[bytes, str]] = {}

    def body(self, scene: Scene) -> str:
        background = _style(position="absolute", left="0", top="0", width=_px(scene.width),
                            height=_px(scene.height), background=_paint(scene.background))
        parts = [f'<div style="{background}"></div>', *map(self._item, scene.items)]
        return f"<!DOCTYPE html><html><body>{''.join(parts)}</body></html>"

    def font_files(self) -> list[str]:
        return [face_file(face) for face in self.faces]

    def font_css(self) -> str:
        rules = [f"@font-face {{ font-family: '{family}'; src: url('{_file_url(face)}') }}"
                 for face, family in self.faces.items()]
        return "".join(rules)

    def _item(self, item: Item) -> str:
        painters = {ShapeItem: self._shape, ImageItem: self._image, QRItem: self._qr,
                    TextItem: self._text}
        return _positioned(item.common, painters[type(item)](item))

    def _embed(self, image: Image.Image) -> str:
        """A URL for an image: served from memory, so that megabytes of base64 never go through
        the HTML parser."""
        buffer = io.BytesIO()
        image.save(buffer, "PNG", compress_level=1)  # WeasyPrint recompresses it anyway
        data = buffer.getvalue()
        url = f"{MEMORY_SCHEME}:{hashlib.sha256(data).hexdigest()[:32]}.png"
        self.memory[url] = (data, "image/png")
        return url

    def _family(self, face: FontFace) -> str:
        return self.faces.setdefault(face, family_name(face))

    def _shape(self, item: ShapeItem) -> str:
        style = _style(**_FILL_BOX, box_sizing="border-box", background=_paint(item.fill))
        if item.stroke and item.stroke_width > 0:
            style += _style(border=f"{_px(item.stroke_width)} solid {item.stroke.css()}")
        radius = "50%" if item.shape == "ellipse" else _px(item.radius) if item.radius else None
        return f'<div style="{style}{_style(border_radius=radius)}"></div>'

    def _image(self, item: ImageItem) -> str:
        return f'<img src="{self._embed(item.image)}" style="{_style(**_FILL_BOX)}">'

    def _qr(self, item: QRItem) -> str:
        rows, cols = len(item.modules), len(item.modules[0]) if item.modules else 0
        light = (f'<rect width="{cols}" height="{rows}" {_svg_fill(item.light)}/>'
                 if item.light else "")
        box = item.common.box
        return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {cols} {rows}" '
                f'width="{_num(box.width)}" height="{_num(box.height)}" '
                f'preserveAspectRatio="none" shape-rendering="crispEdges" '
                f'style="{_style(position="absolute", left="0", top="0")}">{light}'
                f'<path d="{_qr_path(item.modules)}" {_svg_fill(item.dark)}/></svg>')

    def _text(self, item: TextItem) -> str:
        effects = item.shadow is not None or (item.stroke is not None and item.stroke_width > 0)
        parts = [self._effects(item)] if effects else []
        parts += [self._emoji(run) if run.emoji else self._run(run, item.color)
                  for run in item.runs]
        overflow = "hidden" if item.clip else "visible"
        return f'<div style="{_style(**_FILL_BOX, overflow=overflow)}">{"".join(parts)}</div>'

    def _effects(self, item: TextItem) -> str:
        image, margin = text_effects_image(item)
        style = _style(position="absolute", left=_px(-margin), top=_px(-margin),
                       width=_px(image.width / EFFECTS_OVERSAMPLE),
                       height=_px(image.height / EFFECTS_OVERSAMPLE))
        return f'<img src="{self._embed(image)}" style="{style}">'

    def _emoji(self, run: Run) -> str:
        image = emoji_image(run)
        top = run.baseline - emoji_ascent(run)
        style = _style(position="absolute", left=_px(run.x), top=_px(top),
                       width=_px(run.width), height=_px(image.height))
        return f'<img src="{self._embed(image)}" style="{style}">'

    def _run(self, run: Run, color: Color) -> str:
        ascent, descent = vertical_metrics(run.face)
        # A line box whose height is exactly ascent + descent has no half-leading, so the
        # baseline lands at top + ascent: the top is found from the baseline the layout chose.
        style = _style(
            position="absolute", left=_px(run.x), top=_px(run.baseline - ascent * run.size),
            font_family=f"'{self._family(run.face)}'", font_size=_px(run.size),
            line_height=_px((ascent + descent) * run.size), color=color.css(),
            white_space="pre", letter_spacing=_px(run.letter_spacing) if run.letter_spacing
            else None, font_feature_settings=_features_css(run.features))
        if run.direction == "rtl":
            # The run is already placed; the override keeps its glyphs right-to-left without
            # the bidi algorithm moving anything.
            style += _style(direction="rtl", unicode_bidi="bidi-override")
        return f'<span style="{style}">{escape(run.text, quote=False)}</span>'


_FILL_BOX = {"position": "absolute", "left": "0", "top": "0", "width": "100%",
             "height": "100%"}


def _positioned(common: Common, inner: str) -> str:
    box = common.box
    style = _style(position="absolute", left=_px(box.x), top=_px(box.y), width=_px(box.width),
                   height=_px(box.height))
    if common.opacity < 1:
        style += _style(opacity=f"{common.opacity:.4f}")
    if common.rotation:
        # CSS rotates clockwise about the centre, as the template model does.
        style += _style(transform=f"rotate({common.rotation:g}deg)")
    return f'<div style="{style}">{inner}</div>'


def _style(**declarations: str | None) -> str:
    return "".join(f"{name.replace('_', '-')}:{value};"
                   for name, value in declarations.items() if value is not None)


def _num(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".")


def _px(value: float) -> str:
    return f"{_num(value)}px"


def _paint(paint: Paint | None) -> str | None:
    return paint.css() if paint is not None else None


def _svg_fill(color: Color) -> str:
    return f'fill="rgb({color.r},{color.g},{color.b})" fill-opacity="{color.a / 255:.4f}"'


def _qr_path(modules: tuple[tuple[bool, ...], ...]) -> str:
    """One rectangle per horizontal run of dark modules: few path segments, no seams."""
    segments = []
    for y, row in enumerate(modules):
        x = 0
        while x < len(row):
            if not row[x]:
                x += 1
                continue
            start = x
            while x < len(row) and row[x]:
                x += 1
            segments.append(f"M{start} {y}h{x - start}v1h{start - x}z")
    return "".join(segments)


def _features_css(features: tuple[str, ...]) -> str | None:
    """HarfBuzz feature strings as Pillow takes them ("-liga", "+kern", "ss01", "aalt=2") as
    CSS font-feature-settings. Anything else is dropped: this goes into a style attribute."""
    settings = []
    for feature in features:
        match = _FEATURE.fullmatch(feature.strip())
        if match:
            sign, tag, value = match.groups()
            settings.append(f"'{tag}' {value or ('0' if sign == '-' else '1')}")
    return ", ".join(settings) or None


_FEATURE = re.compile(r"([+-]?)([A-Za-z0-9]{4})(?:\[[0-9:]*\])?(?:=([0-9]{1,5}))?")


# --- stroke and shadow bitmaps ----------------------------------------------------------------


def _effects_margin(item: TextItem) -> float:
    margin = item.stroke_width if item.stroke else 0.0
    if item.shadow:
        margin += max(abs(item.shadow.dx), abs(item.shadow.dy)) + 2 * item.shadow.blur
    return float(int(margin) + 2)


def _silhouette(item: TextItem, size: tuple[int, int], margin: float,
                oversample: int) -> Image.Image:
    """Coverage of the text with its stroke, as an "L" mask (emoji cast no stroke)."""
    mask = Image.new("L", size)
    draw = ImageDraw.Draw(mask)
    stroke = item.stroke_width * oversample if item.stroke else 0
    for run in item.runs:
        if run.emoji:
            continue
        font = fonts.load_font(run.face, run.size * oversample)
        origin = ((run.x + margin) * oversample, (run.baseline + margin) * oversample)
        for x, text in _spaced(run, origin[0], oversample):
            draw.text((x, origin[1]), text, fill=255, font=font, anchor="ls",
                      stroke_width=stroke, stroke_fill=255, direction=run.direction,
                      features=list(run.features) or None)
    return mask


def _spaced(run: Run, x: float, oversample: int) -> list[tuple[float, str]]:
    """Pillow has no letter-spacing: a spaced run goes cluster by cluster, as the raster painter
    draws it (and, right to left, as the PDF's spaced text sits)."""
    if not run.letter_spacing:
        return [(x, run.text)]
    pieces = clusters(run.text)
    if run.direction == "rtl":
        pieces.reverse()
    placed = []
    for piece in pieces:
        placed.append((x, piece))
        x += measure(piece, run.face, run.size, False, run.letter_spacing) * oversample
    return placed


def _shadow_layer(item: TextItem, silhouette: Image.Image, oversample: int) -> Image.Image:
    shadow = item.shadow
    assert shadow is not None
    layer = Image.new("RGBA", silhouette.size, shadow.color.rgba)
    alpha = ImageChops.offset(silhouette, round(shadow.dx * oversample),
                              round(shadow.dy * oversample))
    if shadow.blur > 0:
        # CSS convention: the blur radius is twice the Gaussian's standard deviation.
        alpha = alpha.filter(ImageFilter.GaussianBlur(shadow.blur * oversample / 2))
    layer.putalpha(ImageChops.multiply(alpha, layer.getchannel("A")))
    return layer
