"""Turn a painted PIL image into the bytes of an output file.

PNG goes through our own writer (:func:`encode_png`): Pillow's PNG save runs zlib on one core
and costs ~75 ms for a 1200×630 card, more than the whole drawing step. Ours filters rows with
numpy and deflates horizontal bands with ISA-L on all cores, like pigz: ~3-4 ms for the
same card on two cores, ~5 % larger than Pillow's default level (``bench/encode_png.py``).
Renders of one template share most of their rows, so a band deflated before is reused: a
card whose title or price changed deflates only the bands that the new text touches.
The other raster formats are Pillow's encoders with settings picked for speed. PDF is drawn
from the scene by ``renderer.pdf``, not encoded from pixels.
"""

from __future__ import annotations

import functools
import io
import os
import struct
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from queue import Empty, SimpleQueue
from typing import NamedTuple

import numpy as np
from isal import isal_zlib
from PIL import Image

from renderer.cache import ImageLRU
from renderer.errors import RendererError

FORMATS: dict[str, str] = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "avif": "image/avif",
    "gif": "image/gif",
    "pdf": "application/pdf",
}
EXTENSIONS: dict[str, str] = {
    "png": "png",
    "jpeg": "jpg",
    "webp": "webp",
    "avif": "avif",
    "gif": "gif",
    "pdf": "pdf",
}
_ALIASES = {"jpg": "jpeg", "image/jpg": "jpeg"} | {mime: fmt for fmt, mime in FORMATS.items()}

_JPEG_QUALITY = 90
_WEBP_QUALITY = 90
# method 2 is 2.2x faster than libwebp's default 4 for ~3 % more bytes on a 1200x630 card.
_WEBP_METHOD = 2
_AVIF_QUALITY = 75
# speed 9 is ~40 ms on a card where Pillow's default 6 takes ~450 ms (~25 % more bytes).
_AVIF_SPEED = 9
_WHITE = (255, 255, 255)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOR_TYPES = {"L": 0, "RGB": 2, "LA": 4, "RGBA": 6}
_PNG_FILTER_SUB = 1
# CMF 0x78: deflate with a 32 KiB window; FLG 0x01: "fastest" level hint, header check bits.
_ZLIB_HEADER = b"\x78\x01"
_ADLER_BASE = 65521
# Below this many pixels to deflate a second thread saves less than handing it work costs.
_SPLIT_MIN_PIXELS = 200_000
# Bands of about this many filtered bytes (36 rows of a 1200-pixel RGB card) are deflated on
# their own: a changed line of text then costs the few bands it touches, and each band's fresh
# deflate history costs ~0.5 % in size on the bench card (``bench/encode_png.py``).
_BAND_BYTES = 128 * 1024
_CPUS = os.cpu_count() or 2


def normalize_format(name: str) -> str:
    """Map a format name, file extension or MIME type to its canonical name."""
    key = name.strip().lower().removeprefix(".")
    key = _ALIASES.get(key, key)
    if key not in FORMATS:
        supported = ", ".join(FORMATS)
        raise RendererError(
            f"unsupported format {name!r}; supported formats: {supported} (jpg means jpeg)",
            code="unsupported_format",
        )
    return key


def encode(
    image: Image.Image, format: str, *, quality: int | None = None, transparent: bool = False
) -> bytes:
    """Encode one still image. Alpha survives only in png, webp and avif with ``transparent``;
    everything else is composited over white."""
    fmt = normalize_format(format)
    if fmt == "pdf":
        raise RendererError("use renderer.pdf for pdf", code="unsupported_format")
    _check_quality(quality)
    return _ENCODERS[fmt](image, quality, transparent)


def encode_frames(
    frames: Sequence[Image.Image],
    durations_ms: Sequence[int],
    *,
    format: str = "gif",
    loop: int = 0,
    quality: int | None = None,
) -> bytes:
    """Encode an animation (gif or webp); ``loop=0`` repeats forever."""
    fmt = normalize_format(format)
    if fmt not in ("gif", "webp"):
        raise RendererError(f"animations can be gif or webp, not {fmt}", code="unsupported_format")
    _check_frames(frames, durations_ms)
    _check_quality(quality)
    opaque = [_prepare(frame, keep_alpha=False) for frame in frames]
    if fmt == "gif":
        return _gif_animation(opaque, durations_ms, loop)
    return _webp_animation(opaque, durations_ms, loop, quality)


def encode_png(image: Image.Image, *, level: int = 1, threads: int = 2) -> bytes:
    """Write an 8-bit PNG fast: Sub-filtered rows, deflated by ISA-L (``level`` 0-3) in up to
    ``threads`` parallel bands. L, LA, RGB and RGBA are written as they are; other modes are
    converted to RGB, or RGBA when they carry transparency."""
    if not 0 <= level <= 3:
        raise ValueError(f"ISA-L compression level must be 0-3, got {level}")
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    if image.mode not in _PNG_COLOR_TYPES:
        image = image.convert("RGBA" if image.has_transparency_data else "RGB")
    if image.width < 1 or image.height < 1:
        raise ValueError("a PNG needs at least one pixel")
    header = struct.pack(
        ">IIBBBBB", image.width, image.height, 8, _PNG_COLOR_TYPES[image.mode], 0, 0, 0
    )
    rows = np.asarray(image).reshape(image.height, -1)
    idat = _zlib_stream(rows, len(image.getbands()), level, threads)
    return b"".join(
        [_PNG_SIGNATURE, *_chunk(b"IHDR", [header]), *_chunk(b"IDAT", idat), *_chunk(b"IEND", [])]
    )


# --- still formats -------------------------------------------------------------------------


def _encode_png(image: Image.Image, quality: int | None, transparent: bool) -> bytes:
    """PNG is lossless, so ``quality`` chooses compression effort instead: unset is the fast
    parallel ISA-L writer; 1-100 asks zlib (level 1-9 with adaptive filters) for smaller files
    at several times the cost — about 20-30% smaller and 20x slower at 67 on a photo card."""
    prepared = _prepare(image, keep_alpha=transparent)
    if quality is None:
        return encode_png(prepared)
    buffer = io.BytesIO()
    prepared.save(buffer, "PNG", compress_level=max(1, min(9, round(quality * 9 / 100))))
    return buffer.getvalue()


def _encode_jpeg(image: Image.Image, quality: int | None, transparent: bool) -> bytes:
    q = _JPEG_QUALITY if quality is None else quality
    # Chroma subsampling blurs coloured text edges; at 95+ the caller asked for fidelity.
    subsampling = 0 if q >= 95 else 2
    return _save(
        _prepare(image, keep_alpha=False),
        "JPEG",
        quality=q,
        optimize=False,
        subsampling=subsampling,
    )


def _encode_webp(image: Image.Image, quality: int | None, transparent: bool) -> bytes:
    return _save(_prepare(image, keep_alpha=transparent), "WEBP", **_webp_options(quality))


def _encode_avif(image: Image.Image, quality: int | None, transparent: bool) -> bytes:
    q = _AVIF_QUALITY if quality is None else quality
    return _save(_prepare(image, keep_alpha=transparent), "AVIF", quality=q, speed=_AVIF_SPEED)


def _encode_gif(image: Image.Image, quality: int | None, transparent: bool) -> bytes:
    # GIF has one bit of alpha, which makes antialiased edges jagged: always flattened.
    return _save(_palettize(_prepare(image, keep_alpha=False)), "GIF")


_ENCODERS: dict[str, Callable[[Image.Image, int | None, bool], bytes]] = {
    "png": _encode_png,
    "jpeg": _encode_jpeg,
    "webp": _encode_webp,
    "avif": _encode_avif,
    "gif": _encode_gif,
}


def _webp_options(quality: int | None) -> dict:
    if quality == 100:
        # For lossless WebP, method/quality are effort knobs: method 0 is 16 ms on a card
        # where method 1 takes 125 ms for 12 % fewer bytes.
        return {"lossless": True, "quality": 0, "method": 0}
    q = _WEBP_QUALITY if quality is None else quality
    return {"quality": q, "method": _WEBP_METHOD}


def _prepare(image: Image.Image, *, keep_alpha: bool) -> Image.Image:
    """RGB, or RGBA when alpha is wanted and present."""
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if image.has_transparency_data else "RGB")
    if image.mode == "RGB" or keep_alpha:
        return image
    return _flatten(image)


def _flatten(image: Image.Image) -> Image.Image:
    if image.getchannel("A").getextrema()[0] == 255:
        return image.convert("RGB")  # already opaque: skip the blend, it is twice as slow
    background = Image.new("RGB", image.size, _WHITE)
    background.paste(image, mask=image)  # pasting through its own alpha blends over white
    return background


def _palettize(image: Image.Image, colors: int = 256) -> Image.Image:
    # Fast octree: ~7 ms per card where median cut takes ~220 ms. No dithering: dither noise
    # defeats GIF's LZW and makes flat areas shimmer between animation frames.
    return image.quantize(colors, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)


def _save(image: Image.Image, pil_format: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, pil_format, **options)
    return out.getvalue()


def _check_quality(quality: int | None) -> None:
    if quality is not None and not 1 <= quality <= 100:
        raise RendererError(f"quality must be 1-100, got {quality}", code="invalid_option")


# --- animations ----------------------------------------------------------------------------


def _check_frames(frames: Sequence[Image.Image], durations_ms: Sequence[int]) -> None:
    if not frames:
        raise RendererError("an animation needs at least one frame", code="invalid_option")
    if len(frames) != len(durations_ms):
        raise RendererError(
            f"{len(frames)} frames but {len(durations_ms)} durations", code="invalid_option"
        )
    if any(frame.size != frames[0].size for frame in frames):
        raise RendererError("animation frames differ in size", code="invalid_option")
    if any(duration <= 0 for duration in durations_ms):
        raise RendererError("frame durations must be positive", code="invalid_option")


def _gif_animation(frames: list[Image.Image], durations_ms: Sequence[int], loop: int) -> bytes:
    palette = _shared_palette(frames)
    indexed = [frame.quantize(palette=palette, dither=Image.Dither.NONE) for frame in frames]
    # GIF counts in centiseconds; round rather than let Pillow truncate 15 ms to 10 ms.
    durations = [max(10, 10 * round(d / 10)) for d in durations_ms]
    # Pillow crops each frame to what changed since the previous one, so "leave in place" (1)
    # is the disposal that composes correctly; "restore to background" (2) would blank
    # everything outside the crop. ``optimize`` paints unchanged pixels inside the crop with
    # the palette's spare index as transparent, which LZW packs into long runs.
    return _save(
        indexed[0],
        "GIF",
        save_all=True,
        append_images=indexed[1:],
        duration=durations,
        loop=loop,
        disposal=1,
        optimize=True,
    )


def _shared_palette(frames: list[Image.Image]) -> Image.Image:
    """One palette for every frame: unchanged pixels keep their index, so frames don't
    flicker and Pillow's per-frame crop stays tight. Built from a reduced montage, which is
    plenty to find the colours and keeps the cost flat in the frame count. 255 colours leave
    one index free for "unchanged" (see ``_gif_animation``)."""
    factor = max(1, round((len(frames) * frames[0].width * frames[0].height / 1e6) ** 0.5))
    small = [frame.reduce(factor) for frame in frames]
    montage = Image.new("RGB", (small[0].width, small[0].height * len(small)))
    for i, frame in enumerate(small):
        montage.paste(frame, (0, i * small[0].height))
    return _palettize(montage, colors=255)


def _webp_animation(
    frames: list[Image.Image], durations_ms: Sequence[int], loop: int, quality: int | None
) -> bytes:
    return _save(
        frames[0],
        "WEBP",
        save_all=True,
        append_images=frames[1:],
        duration=list(durations_ms),
        loop=loop,
        **_webp_options(quality),
    )


# --- fast PNG ------------------------------------------------------------------------------


class _Band(NamedTuple):
    deflated: bytes
    adler: int
    length: int


# Deflated bands by their pixels. The pixels are kept and compared, so a CRC-32 collision
# costs one deflate, never a wrong picture. Each entry is also charged for its Python objects
# (~600 bytes), which outweigh the pixels of small images; an image larger than a quarter of
# the cache is not kept, so that it does not push out every other template's bands.
_BAND_OVERHEAD = 1024
_bands = ImageLRU(
    64 * 1024 * 1024,
    cost=lambda entry: entry[0].nbytes + len(entry[1].deflated) + _BAND_OVERHEAD,
)


def _zlib_stream(rows: np.ndarray, channels: int, level: int, threads: int) -> list[bytes]:
    """The zlib stream of the filtered image, as pieces. Bands are deflated independently
    and each but the last ends with a sync flush (byte-aligned, not final), so the raw
    deflate pieces concatenate into one valid stream, as pigz does. Bands seen before are
    reused; the others are deflated on up to ``threads`` threads when they are many."""
    per_band = max(1, _BAND_BYTES // rows.shape[1])
    edges = [*range(0, rows.shape[0], per_band), rows.shape[0]]
    keep = rows.nbytes <= _bands.max_bytes // 4  # else never kept: not even looked up
    parts: list[_Band | None] = []
    missing: dict[int, tuple[tuple | None, np.ndarray, bool]] = {}
    for index, (start, stop) in enumerate(pairwise(edges)):
        band, last = rows[start:stop], stop == rows.shape[0]
        key = _band_key(band, channels, level, last=last) if keep else None
        seen = _bands.get(key) if keep else None
        if seen is not None and np.array_equal(seen[0], band):
            parts.append(seen[1])
        else:
            parts.append(None)
            missing[index] = (key, band, last)
    if missing:
        pixels = sum(band.shape[0] for _, band, _ in missing.values()) * rows.shape[1] // channels
        workers = 1 if pixels < _SPLIT_MIN_PIXELS else min(threads, _CPUS)
        bands = [band for _, band, _ in missing.values()]
        lasts = [last for _, _, last in missing.values()]
        for (index, (key, band, _)), part in zip(
            missing.items(), _deflate_bands(bands, lasts, channels, level, workers), strict=True
        ):
            parts[index] = part
            if keep:
                _bands.put(key, (band.copy(), part))
    adler = parts[0].adler
    for part in parts[1:]:
        adler = _adler32_combine(adler, part.adler, part.length)
    return [_ZLIB_HEADER, *(part.deflated for part in parts), struct.pack(">I", adler)]


def _band_key(band: np.ndarray, channels: int, level: int, *, last: bool) -> tuple:
    return (isal_zlib.crc32(band), band.shape, channels, level, last)


def _deflate_bands(
    bands: list[np.ndarray], lasts: list[bool], channels: int, level: int, workers: int
) -> list[_Band]:
    """Workers, the caller among them, take bands from a shared queue: one that wakes late
    or shares its core with a noisy neighbour simply does fewer bands."""
    parts: dict[int, _Band] = {}
    todo: SimpleQueue[int] = SimpleQueue()
    for index in range(len(bands)):
        todo.put(index)

    def drain() -> None:
        while True:
            try:
                index = todo.get_nowait()
            except Empty:
                return
            parts[index] = _deflate_band(bands[index], channels, level, lasts[index])

    helpers = [_pool().submit(drain) for _ in range(workers - 1)]
    drain()
    for helper in helpers:
        helper.result()  # re-raises a worker's exception here
    return [parts[index] for index in range(len(bands))]


def _deflate_band(rows: np.ndarray, channels: int, level: int, last: bool) -> _Band:
    filtered = _filter_sub(rows, channels)
    deflater = isal_zlib.compressobj(level, isal_zlib.DEFLATED, -15)  # raw deflate
    flush = isal_zlib.Z_FINISH if last else isal_zlib.Z_SYNC_FLUSH
    deflated = deflater.compress(filtered) + deflater.flush(flush)
    # ISA-L's adler32 is zlib's, ~5x faster, and like the deflate it runs without the GIL.
    return _Band(deflated, isal_zlib.adler32(filtered), filtered.size)


def _filter_sub(rows: np.ndarray, channels: int) -> np.ndarray:
    """PNG filter 1 (Sub) on every row: each byte minus the same channel one pixel left.
    On the bench card (ISA-L level 1) Sub gives 818 kB in 0.2 ms; Up 822 kB, None 1183 kB;
    Avg 802 kB and Paeth 812 kB cost 1.6 and 29 ms in numpy, and per-row adaptive choice
    816 kB for +3 ms, all more than the whole deflate saves. Sub also keeps bands
    independent: it never looks at the row above."""
    filtered = np.empty((rows.shape[0], rows.shape[1] + 1), np.uint8)
    filtered[:, 0] = _PNG_FILTER_SUB
    filtered[:, 1 : channels + 1] = rows[:, :channels]
    np.subtract(rows[:, channels:], rows[:, :-channels], out=filtered[:, channels + 1 :])
    return filtered


def _adler32_combine(adler1: int, adler2: int, length2: int) -> int:
    """Adler-32 of A+B from those of A and B (zlib's adler32_combine, which Python lacks):
    every running sum over B is offset by A's byte sum, i.e. by (a1 - 1)."""
    a1, b1 = adler1 & 0xFFFF, adler1 >> 16
    a2, b2 = adler2 & 0xFFFF, adler2 >> 16
    a = (a1 + a2 - 1) % _ADLER_BASE
    b = (b1 + b2 + length2 * (a1 - 1)) % _ADLER_BASE
    return (b << 16) | a


def _chunk(kind: bytes, pieces: list[bytes]) -> list[bytes]:
    """A PNG chunk as pieces, so the IDAT data is copied only once, into the final file."""
    crc = isal_zlib.crc32(kind)  # same CRC-32 as zlib.crc32, ~25x faster on an 800 kB IDAT
    for piece in pieces:
        crc = isal_zlib.crc32(piece, crc)
    length = sum(len(piece) for piece in pieces)
    return [struct.pack(">I", length), kind, *pieces, struct.pack(">I", crc)]


@functools.cache
def _pool() -> ThreadPoolExecutor:
    """Created on first use, not at import; workers start only when work is submitted."""
    return ThreadPoolExecutor(max_workers=_CPUS, thread_name_prefix="png-deflate")


# A forked child (RQ work horse) inherits the pool object but not its threads.
os.register_at_fork(after_in_child=_pool.cache_clear)
