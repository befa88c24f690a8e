"""Image sources for image layers: loading (``data:``, ``asset:``, ``http(s)`` through the
injected fetcher), safe decoding within pixel and byte limits, and fitting into a box with focal
position, corner radius, circle mask and grayscale. Decoded and fitted images are cached, so a
photo shared by thousands of renders is decoded and resized once."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import urllib.parse
import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageChops, ImageDraw, ImageOps

from .assets import asset_stamp
from .cache import ImageLRU
from .errors import LimitError, ResourceError

Fetch = Callable[[str], bytes]
Assets = Callable[[str], bytes]
ANCHORS = {
    "center": (0.5, 0.5), "top": (0.5, 0.0), "bottom": (0.5, 1.0), "left": (0.0, 0.5),
    "right": (1.0, 0.5), "top-left": (0.0, 0.0), "top-right": (1.0, 0.0),
    "bottom-left": (0.0, 1.0), "bottom-right": (1.0, 1.0),
}
# Web picture formats only: Pillow would otherwise also open PostScript (through Ghostscript),
# PSD, FITS and dozens more, each a decoder that untrusted remote bytes need not reach.
FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "AVIF", "BMP", "TIFF", "ICO")


@dataclass(frozen=True)
class Loaded:
    image: Image.Image  # RGBA, fully decoded
    digest: str


_decoded = ImageLRU(512 * 1024 * 1024)
_fitted = ImageLRU(256 * 1024 * 1024)
_by_source: OrderedDict[Hashable, tuple[str, int]] = OrderedDict()  # source -> digest, bytes


def read_source(src: str, *, fetch: Fetch | None, assets: Assets | None, max_bytes: int,
                path: str) -> bytes:
    """The raw bytes behind an image ``src``."""
    scheme = src.split(":", 1)[0].lower() if ":" in src else ""
    if scheme == "data":
        data = _data_uri(src, path)
    elif scheme == "asset":
        if assets is None:
            raise ResourceError(f"cannot load {src!r}: no asset store configured", path=path)
        data = _call(assets, src[len("asset:"):], src, path)
    elif scheme in ("http", "https"):
        if fetch is None:
            raise ResourceError(f"cannot load {src!r}: remote images are not enabled here",
                                path=path)
        data = _call(fetch, src, src, path)
    else:
        raise ResourceError(f"cannot load {src!r}: only http(s), asset: and data: sources "
                            f"are allowed", path=path)
    if len(data) > max_bytes:
        raise LimitError(f"image {_short(src)} is {len(data):,} bytes; the limit is "
                         f"{max_bytes:,}", path=path)
    return data


def _call(loader: Callable[[str], bytes], arg: str, src: str, path: str) -> bytes:
    try:
        return loader(arg)
    except (ResourceError, LimitError) as exc:
        raise type(exc)(exc.message, path=path) from None
    except Exception as exc:  # a fetcher's own error type: keep its message, name the source
        raise ResourceError(f"cannot load {_short(src)}: {exc}", path=path) from None


def _short(src: str) -> str:
    return repr(src if len(src) <= 80 else src[:77] + "...")


def _data_uri(src: str, path: str) -> bytes:
    header, sep, payload = src.partition(",")
    if not sep:
        raise ResourceError("malformed data: URI (no comma)", path=path)
    try:
        if header.lower().endswith(";base64"):
            return base64.b64decode(payload, validate=False)
        return urllib.parse.unquote_to_bytes(payload)
    except (binascii.Error, ValueError) as exc:
        raise ResourceError(f"malformed data: URI: {exc}", path=path) from None


def decode(data: bytes, *, max_pixels: int, path: str, src: str = "") -> Loaded:
    """Decode within the pixel limit (checked from the header, before any pixel is decoded)."""
    digest = hashlib.sha256(data).hexdigest()
    cached = _decoded.get(digest)
    if cached is not None and cached.width * cached.height <= max_pixels:
        return Loaded(cached, digest)
    image = _open(data, max_pixels, path, src)
    _decoded.put(digest, image)
    return Loaded(image, digest)


def _open(data: bytes, max_pixels: int, path: str, src: str) -> Image.Image:
    name = _short(src) if src else "image"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
            pixels = image.width * image.height
            if pixels > max_pixels:
                raise LimitError(f"{name} is {image.width}x{image.height} = {pixels:,} pixels; "
                                 f"the limit is {max_pixels:,}", path=path)
            image = ImageOps.exif_transpose(image)
            image.load()
    except LimitError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise LimitError(f"{name} was refused as a decompression bomb: {exc}",
                         path=path) from None
    except Image.UnidentifiedImageError:  # its message is the repr of our BytesIO
        kinds = f"{', '.join(FORMATS[:-1])} or {FORMATS[-1]}"
        raise ResourceError(f"{name} is not a decodable image: not a {kinds} file",
                            path=path) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ResourceError(f"{name} is not a decodable image: {exc}", path=path) from None
    return image.convert("RGBA") if image.mode != "RGBA" else image


def load(src: str, *, fetch: Fetch | None, assets: Assets | None, max_bytes: int,
         max_pixels: int, path: str) -> Loaded:
    """Read and decode ``src``; when warm, ``data:`` sources and assets whose store can stamp
    them skip even the read.

    The same ``asset:`` name means another picture in another workspace's store, or after a
    re-upload, so an asset is only reused under its store's stamp (see ``renderer.assets``);
    without a stamp it is read on every render (the decode is still cached by digest)."""
    key = _source_key(src, assets)
    if key is not None and key in _by_source:
        digest, size = _by_source[key]
        cached = _decoded.get(digest)
        # the limits may be tighter in this render than in the one that filled the cache
        if cached is not None and size <= max_bytes and \
                cached.width * cached.height <= max_pixels:
            return Loaded(cached, digest)
    data = read_source(src, fetch=fetch, assets=assets, max_bytes=max_bytes, path=path)
    loaded = decode(data, max_pixels=max_pixels, path=path, src=src)
    if key is not None:
        _by_source[key] = (loaded.digest, len(data))
        while len(_by_source) > 4096:
            _by_source.popitem(last=False)
    return loaded


def _source_key(src: str, assets: Assets | None) -> Hashable | None:
    scheme = src[:6].lower()
    if scheme.startswith("data:"):
        return src if len(src) < 1_000_000 else None
    if scheme == "asset:":
        stamp = asset_stamp(assets, src[6:])
        return ("asset", stamp) if stamp is not None else None
    return None


@dataclass(frozen=True)
class FitSpec:
    width: int
    height: int
    fit: str = "cover"
    position: str = "center"
    radius: float = 0.0
    circle: bool = False
    grayscale: bool = False


def fitted(loaded: Loaded, spec: FitSpec) -> Image.Image:
    """``loaded`` fitted to exactly ``spec.width`` x ``spec.height`` (RGBA), cached."""
    key = (loaded.digest, spec)
    cached = _fitted.get(key)
    if cached is not None:
        return cached
    image = _fit(loaded.image, spec)
    if spec.grayscale:
        alpha = image.getchannel("A")
        image = ImageOps.grayscale(image).convert("RGBA")
        image.putalpha(alpha)
    if spec.circle or spec.radius > 0:
        image = _apply_mask(image, spec)
    _fitted.put(key, image)
    return image


def _fit(image: Image.Image, spec: FitSpec) -> Image.Image:
    size = (spec.width, spec.height)
    if spec.fit == "fill":
        return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    centering = ANCHORS[spec.position]
    if spec.fit == "cover":
        return ImageOps.fit(image, size, Image.Resampling.LANCZOS, centering=centering)
    inner = ImageOps.contain(image, size, Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", size, (0, 0, 0, 0))
    x = round((spec.width - inner.width) * centering[0])
    y = round((spec.height - inner.height) * centering[1])
    canvas.paste(inner, (x, y))
    return canvas


def _apply_mask(image: Image.Image, spec: FitSpec) -> Image.Image:
    mask = rounded_mask(image.width, image.height, spec.radius, spec.circle)
    out = image.copy()
    out.putalpha(ImageChops.multiply(image.getchannel("A"), mask))
    return out


@lru_cache(maxsize=256)
def rounded_mask(width: int, height: int, radius: float, ellipse: bool) -> Image.Image:
    """An anti-aliased mask: drawn at 4x and reduced, since Pillow's shapes are not smoothed."""
    factor = 4
    big = Image.new("L", (width * factor, height * factor), 0)
    draw = ImageDraw.Draw(big)
    box = (0, 0, width * factor - 1, height * factor - 1)
    if ellipse:
        draw.ellipse(box, fill=255)
    else:
        r = min(radius, width / 2, height / 2) * factor
        draw.rounded_rectangle(box, radius=r, fill=255)
    return big.reduce(factor)
