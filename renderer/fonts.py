"""Font resolution, fallback chains and cached font objects.

A family resolves through the template's ``fonts`` (``asset:`` or ``data:`` sources), then the
workspace's fonts (given by the caller as family -> weight -> file path), then the bundled
defaults: Noto from Debian's font packages, installed by ``make setup``. Weights pick the
nearest face. Every face then falls back, character by character, through one chain of bundled
fonts that covers Latin, Greek, Cyrillic, Arabic, Hebrew, Devanagari, CJK, symbols and colour
emoji, so no script draws as tofu boxes.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tempfile
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .assets import asset_stamp
from .errors import ResourceError, TemplateError
from .scene import FontFace

NOTO = Path("/usr/share/fonts/truetype/noto")
NOTO_CJK = Path("/usr/share/fonts/opentype/noto")
CJK_SC = 2  # face index of "Noto Sans CJK SC" inside the Debian .ttc collections
EMOJI_STRIKE = 109  # Noto Color Emoji is a CBDT bitmap font with a single 109 ppem strike

BUNDLED: dict[str, dict[int, FontFace]] = {
    "noto sans": {400: FontFace(str(NOTO / "NotoSans-Regular.ttf")),
                  700: FontFace(str(NOTO / "NotoSans-Bold.ttf"))},
    "noto serif": {400: FontFace(str(NOTO / "NotoSerif-Regular.ttf")),
                   700: FontFace(str(NOTO / "NotoSerif-Bold.ttf"))},
    "noto sans mono": {400: FontFace(str(NOTO / "NotoSansMono-Regular.ttf")),
                       700: FontFace(str(NOTO / "NotoSansMono-Bold.ttf"))},
    "noto sans arabic": {400: FontFace(str(NOTO / "NotoSansArabic-Regular.ttf")),
                         700: FontFace(str(NOTO / "NotoSansArabic-Bold.ttf"))},
    "noto sans hebrew": {400: FontFace(str(NOTO / "NotoSansHebrew-Regular.ttf")),
                         700: FontFace(str(NOTO / "NotoSansHebrew-Bold.ttf"))},
    "noto sans devanagari": {400: FontFace(str(NOTO / "NotoSansDevanagari-Regular.ttf")),
                             700: FontFace(str(NOTO / "NotoSansDevanagari-Bold.ttf"))},
    "noto sans cjk": {400: FontFace(str(NOTO_CJK / "NotoSansCJK-Regular.ttc"), CJK_SC),
                      700: FontFace(str(NOTO_CJK / "NotoSansCJK-Bold.ttc"), CJK_SC)},
    "noto sans symbols": {400: FontFace(str(NOTO / "NotoSansSymbols-Regular.ttf")),
                          700: FontFace(str(NOTO / "NotoSansSymbols-Bold.ttf"))},
    "noto sans symbols 2": {400: FontFace(str(NOTO / "NotoSansSymbols2-Regular.ttf"))},
    "noto color emoji": {400: FontFace(str(NOTO / "NotoColorEmoji.ttf"),
                                       bitmap_size=EMOJI_STRIKE)},
}
ALIASES = {"sans": "noto sans", "sans-serif": "noto sans", "serif": "noto serif",
           "mono": "noto sans mono", "monospace": "noto sans mono", "emoji": "noto color emoji"}
FALLBACK_FAMILIES = (
    "noto sans", "noto sans arabic", "noto sans hebrew", "noto sans devanagari", "noto sans cjk",
    "noto sans symbols", "noto sans symbols 2", "noto color emoji",
)
EMOJI_FACE = BUNDLED["noto color emoji"][400]


def nearest_weight(available: list[int], weight: float) -> int:
    """CSS-like: the closest weight, ties going to the bolder face for weights above 500."""
    return min(available, key=lambda w: (abs(w - weight), -w if weight > 500 else w))


class FontResolver:
    """Resolves families to faces for one template (plus the workspace's fonts)."""

    def __init__(self, template_fonts: Mapping[str, Mapping[str, str]] | None = None, *,
                 assets: Callable[[str], bytes] | None = None,
                 extra: Mapping[str, Mapping[int, str]] | None = None):
        self._template_fonts = {k.lower(): v for k, v in (template_fonts or {}).items()}
        self._assets = assets
        self._extra = {k.lower(): {int(w): FontFace(p) for w, p in faces.items()}
                       for k, faces in (extra or {}).items()}
        self._loaded: dict[str, tuple[object, FontFace]] = {}

    def face(self, family: str, weight: float, *, path: str) -> FontFace:
        key = ALIASES.get(family.strip().lower(), family.strip().lower())
        if key in self._template_fonts:
            sources = self._template_fonts[key]
            chosen = nearest_weight([int(w) for w in sources], weight)
            return self._load_source(sources[str(chosen)], f"fonts.{family}.{chosen}")
        for table in (self._extra, BUNDLED):
            if key in table:
                return table[key][nearest_weight(list(table[key]), weight)]
        known = sorted({*self._template_fonts, *self._extra, *BUNDLED})
        raise TemplateError(f"unknown font {family!r} (available: {', '.join(known)})",
                            path=path)

    def chain(self, primary: FontFace, weight: float) -> tuple[FontFace, ...]:
        """The primary face followed by the bundled fallbacks, each at the nearest weight."""
        return fallback_chain(primary, weight)

    def _load_source(self, src: str, path: str) -> FontFace:
        """The font file behind ``src``; kept while the asset store's stamp says it is the
        same file (see ``renderer.assets``), so warm renders do not read it again."""
        stamp = src if src.startswith("data:") else asset_stamp(self._assets, src[6:])
        face = self._loaded.get(src)
        if face is not None and stamp is not None and face[0] == stamp:
            return face[1]
        loaded = FontFace(materialize_font(self._read(src, path), path=path))
        self._loaded[src] = (stamp, loaded)
        return loaded

    def _read(self, src: str, path: str) -> bytes:
        if src.startswith("data:"):
            return _decode_data_uri(src, path)
        if self._assets is None:
            raise ResourceError(f"font {src!r} needs an asset store", path=path)
        try:
            return self._assets(src[len("asset:"):])
        except ResourceError:
            raise
        except Exception as exc:
            raise ResourceError(f"cannot load font {src!r}: {exc}", path=path) from None


@lru_cache(maxsize=1024)
def fallback_chain(primary: FontFace, weight: float) -> tuple[FontFace, ...]:
    faces = [primary]
    for family in FALLBACK_FAMILIES:
        face = BUNDLED[family][nearest_weight(list(BUNDLED[family]), weight)]
        if face not in faces:
            faces.append(face)
    return tuple(faces)


def _decode_data_uri(src: str, path: str) -> bytes:
    try:
        header, _, payload = src.partition(",")
        return base64.b64decode(payload) if header.endswith(";base64") else payload.encode()
    except ValueError as exc:
        raise ResourceError(f"bad data: URI: {exc}", path=path) from None


def font_cache_dir() -> Path:
    folder = Path(os.environ.get("PIXELMERGE_FONT_CACHE") or
                  Path(tempfile.gettempdir()) / "pixelmerge-fonts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def materialize_font(data: bytes, *, path: str) -> str:
    """Store uploaded font bytes (TTF, OTF, WOFF, WOFF2) as a plain sfnt file and return its path.

    Both painters want a file: FreeType reads it for raster output and WeasyPrint embeds it in
    PDFs. WOFF/WOFF2 are unpacked to sfnt with fontTools, which also proves the data is a font."""
    digest = hashlib.sha256(data).hexdigest()[:32]
    target = font_cache_dir() / f"{digest}.otf"
    if target.exists():
        return str(target)
    from fontTools.ttLib import TTFont, TTLibError

    try:
        font = TTFont(io.BytesIO(data))
        font.flavor = None
        buffer = io.BytesIO()
        font.save(buffer)
    except (TTLibError, Exception) as exc:
        raise ResourceError(f"not a usable font file (TTF, OTF, WOFF or WOFF2): {exc}",
                            path=path) from None
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    partial.write_bytes(buffer.getvalue())
    partial.replace(target)  # atomic: concurrent renders never see half a file
    return str(target)


@lru_cache(maxsize=64)
def coverage(face: FontFace) -> frozenset[int]:
    """The code points a face has glyphs for (read once per face)."""
    from fontTools.ttLib import TTFont

    font = TTFont(face.path, fontNumber=face.index, lazy=True)
    try:
        return frozenset(font.getBestCmap() or {})
    finally:
        font.close()


@lru_cache(maxsize=512)
def load_font(face: FontFace, size: float) -> ImageFont.FreeTypeFont:
    """A Pillow font with HarfBuzz shaping (raqm), cached by face and size."""
    if face.bitmap_size:
        size = face.bitmap_size
    try:
        return ImageFont.truetype(face.path, size, index=face.index,
                                  layout_engine=ImageFont.Layout.RAQM)
    except OSError as exc:
        raise ResourceError(f"cannot open font {face.path}: {exc}") from None


@lru_cache(maxsize=256)
def metrics(face: FontFace, size: float) -> tuple[float, float]:
    """(ascent, descent) in pixels at ``size``, both positive."""
    font = load_font(face, size)
    ascent, descent = font.getmetrics()
    scale = size / face.bitmap_size if face.bitmap_size else 1.0
    return ascent * scale, descent * scale


@lru_cache(maxsize=1024)
def emoji_image(text: str, face: FontFace, size: float) -> tuple[Image.Image, float]:
    """A colour emoji cluster drawn from the bitmap strike and scaled to ``size``.

    Returns the RGBA image and the distance from its top to the baseline."""
    font = load_font(face, face.bitmap_size or size)
    ascent, descent = font.getmetrics()
    width = max(1, round(font.getlength(text)))
    canvas = Image.new("RGBA", (width, ascent + descent))
    ImageDraw.Draw(canvas).text((0, ascent), text, font=font, anchor="ls", embedded_color=True)
    scale = size / (face.bitmap_size or size)
    target = (max(1, round(width * scale)), max(1, round((ascent + descent) * scale)))
    return canvas.resize(target, Image.Resampling.LANCZOS), ascent * scale
