import io
import random
import struct
import zlib
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from renderer.encode import (
    EXTENSIONS,
    FORMATS,
    _adler32_combine,
    _band_key,
    _bands,
    encode,
    encode_frames,
    encode_png,
    normalize_format,
)
from renderer.errors import RendererError

STILL_FORMATS = ["png", "jpeg", "webp", "avif", "gif"]


def noise(width, height, mode, seed=0):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(height, width, len(mode)), dtype=np.uint8)
    return Image.fromarray(pixels.squeeze(axis=2) if mode == "L" else pixels, mode)


def card(width=160, height=90, mode="RGB"):
    """Smooth enough for lossy codecs to stay close: a gradient and two flat blocks."""
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack(
        [255 * x // width, 255 * y // height, np.full_like(x, 128), np.full_like(x, 255)], -1
    )
    pixels[10:40, 10:60, :3] = (250, 250, 250)
    pixels[50:80, 90:150, :3] = (20, 30, 200)
    image = Image.fromarray(pixels.astype(np.uint8), "RGBA")
    return image if mode == "RGBA" else image.convert(mode)


def decode(data):
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def mean_abs_diff(a, b):
    return np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).mean()


def chunks(png):
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, found = 8, []
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + data), kind
        found.append((kind, data))
        pos += 12 + length
    return found


# --- encode_png ------------------------------------------------------------------------------

SIZES = [(1, 1), (3, 2), (7, 5), (33, 17), (1200, 630), (97, 2500), (250_000, 1)]


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
@pytest.mark.parametrize("threads", [1, 2])
def test_png_round_trips_exact_pixels(mode, size, threads):
    source = noise(*size, mode)
    decoded = decode(encode_png(source, threads=threads))
    assert decoded.format == "PNG"
    assert decoded.mode == mode
    assert decoded.size == size
    assert np.array_equal(np.asarray(decoded), np.asarray(source))


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_png_levels_round_trip(level):
    source = card(700, 400, "RGBA")  # 280k pixels: split into bands
    decoded = decode(encode_png(source, level=level))
    assert np.array_equal(np.asarray(decoded), np.asarray(source))


@pytest.mark.parametrize("size", [(5, 3), (1200, 630)], ids=["small", "banded"])
def test_png_is_valid_for_strict_decoders(size):
    width, height = size
    source = noise(width, height, "RGBA", seed=3)
    png = encode_png(source)
    kinds = [kind for kind, _ in chunks(png)]
    assert kinds == [b"IHDR", *[b"IDAT"] * (len(kinds) - 2), b"IEND"]
    ihdr = dict(chunks(png))[b"IHDR"]
    assert struct.unpack(">IIBBBBB", ihdr) == (width, height, 8, 6, 0, 0, 0)
    idat = b"".join(data for kind, data in chunks(png) if kind == b"IDAT")
    inflater = zlib.decompressobj()  # checks the zlib header and the Adler-32 trailer
    raw = inflater.decompress(idat)
    assert inflater.eof and not inflater.unused_data
    assert len(raw) == height * (1 + width * 4)
    assert set(raw[:: 1 + width * 4]) <= {0, 1, 2, 3, 4}  # a valid filter type per row
    Image.open(io.BytesIO(png)).verify()


@pytest.mark.parametrize("mode", ["L", "LA"])
def test_png_writes_grey_modes_natively(mode):
    source = noise(40, 30, mode)
    decoded = decode(encode_png(source))
    assert decoded.mode == mode
    assert np.array_equal(np.asarray(decoded), np.asarray(source))


def test_png_converts_palette_images():
    opaque = card().convert("P")
    assert decode(encode_png(opaque)).mode == "RGB"
    with_transparency = card().convert("P")
    with_transparency.info["transparency"] = 0
    assert decode(encode_png(with_transparency)).mode == "RGBA"


def test_png_threads_give_the_same_file():
    source = card(1200, 630)
    _bands.clear()
    one = encode_png(source, threads=1)
    _bands.clear()
    two = encode_png(source, threads=2)
    assert one == two
    assert np.array_equal(np.asarray(decode(one)), np.asarray(source))


def test_png_reuses_unchanged_bands_and_writes_the_same_file():
    """A render that changes one line of a card deflates only the bands it touches; the file
    is byte for byte the one a fresh encoding writes."""
    before = noise(1200, 630, "RGB", seed=5)
    encode_png(before)
    pixels = np.asarray(before).copy()
    pixels[300:310, 100:400] = (255, 0, 0)
    after = Image.fromarray(pixels, "RGB")
    reused = encode_png(after)
    _bands.clear()
    assert reused == encode_png(after)
    assert np.array_equal(np.asarray(decode(reused)), pixels)


def test_png_never_reuses_a_band_with_the_same_crc_but_other_pixels():
    """What CRC-32 collisions would look like: each band of another picture filed under the
    key of one of this picture's bands. Pixels are compared, so this one is still written."""
    source, other = noise(1200, 630, "RGB", seed=6), noise(1200, 630, "RGB", seed=7)
    _bands.clear()
    encode_png(other)
    entries = list(_bands._items.values())  # in band order
    _bands.clear()
    rows, start = np.asarray(source).reshape(630, -1), 0
    for pixels, band in entries:
        stop = start + pixels.shape[0]
        _bands.put(_band_key(rows[start:stop], 3, 1, last=stop == 630), (pixels, band))
        start = stop
    assert start == 630
    assert np.array_equal(np.asarray(decode(encode_png(source))), np.asarray(source))


def test_png_band_cache_counts_each_band_and_keeps_no_huge_image():
    """Small images are mostly Python objects: a band is charged for those too, so the
    cache's bound holds in memory, not only in pixels. An image bigger than a quarter of the
    cache is not kept at all (it would push out every other template's bands)."""
    _bands.clear()
    for seed in range(200):
        encode_png(noise(8, 8, "RGB", seed=seed))
    assert len(_bands._items) == 200
    assert _bands._size >= 200 * 1024
    _bands.clear()
    huge = Image.new("RGB", (4000, 1500), (10, 20, 30))  # 18 MB of rows
    assert decode(encode_png(huge)).size == (4000, 1500)
    assert len(_bands._items) == 0


@pytest.mark.parametrize("options", [{"level": 4}, {"level": -1}, {"threads": 0}])
def test_png_rejects_bad_options(options):
    with pytest.raises(ValueError):
        encode_png(card(), **options)


def test_adler32_combine_matches_zlib():
    rng = random.Random(7)
    data = bytes(rng.getrandbits(8) for _ in range(200_000))
    for cut in [0, 1, 65520, 65521, 100_000, len(data)]:
        left, right = data[:cut], data[cut:]
        combined = _adler32_combine(zlib.adler32(left), zlib.adler32(right), len(right))
        assert combined == zlib.adler32(data)


# --- encode ----------------------------------------------------------------------------------

EXPECTED_MODES = {"png": "RGB", "jpeg": "RGB", "webp": "RGB", "avif": "RGB", "gif": "P"}


@pytest.mark.parametrize("fmt", STILL_FORMATS)
def test_every_format_decodes_with_the_right_size_mode_and_mime(fmt):
    decoded = decode(encode(card(), fmt))
    assert decoded.size == (160, 90)
    assert decoded.mode == EXPECTED_MODES[fmt]
    assert Image.MIME[decoded.format] == FORMATS[fmt]


@pytest.mark.parametrize(("fmt", "tolerance"), [("jpeg", 3), ("webp", 3), ("avif", 4), ("gif", 3)])
def test_lossy_formats_stay_close_to_the_source(fmt, tolerance):
    source = card()
    assert mean_abs_diff(decode(encode(source, fmt)).convert("RGB"), source) < tolerance


def test_lossless_webp_at_quality_100():
    source = noise(64, 48, "RGB")
    assert np.array_equal(np.asarray(decode(encode(source, "webp", quality=100))), source)


@pytest.mark.parametrize(("quality", "sampling"), [(None, 2), (90, 2), (95, 0), (100, 0)])
def test_jpeg_subsamples_chroma_below_95(quality, sampling):
    decoded = decode(encode(card(), "jpeg", quality=quality))
    assert JpegImagePlugin.get_sampling(decoded) == sampling


def test_lower_quality_gives_smaller_files():
    source = noise(200, 100, "RGB")
    for fmt in ("jpeg", "webp", "avif"):
        assert len(encode(source, fmt, quality=30)) < len(encode(source, fmt, quality=90))


@pytest.mark.parametrize("fmt", ["png", "webp", "avif"])
def test_transparent_keeps_alpha(fmt):
    source = card(mode="RGBA")
    source.putalpha(Image.linear_gradient("L").resize(source.size))
    decoded = decode(encode(source, fmt, transparent=True))
    assert decoded.mode == "RGBA"
    alpha = np.asarray(decoded.getchannel("A"), np.int16)
    expected = np.asarray(source.getchannel("A"), np.int16)
    assert np.abs(alpha - expected).mean() < (0.01 if fmt == "png" else 3)


@pytest.mark.parametrize("fmt", STILL_FORMATS)
def test_without_transparent_alpha_is_composited_over_white(fmt):
    source = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    source.paste((255, 0, 0, 255), (0, 0, 32, 64))  # left: opaque red, right: see-through
    decoded = decode(encode(source, fmt)).convert("RGBA")
    assert "A" not in decode(encode(source, fmt)).getbands()
    left, right = decoded.crop((4, 4, 28, 60)), decoded.crop((36, 4, 60, 60))
    assert mean_abs_diff(left, Image.new("RGBA", left.size, (255, 0, 0, 255))) < 4
    assert mean_abs_diff(right, Image.new("RGBA", right.size, (255, 255, 255, 255))) < 4


def test_half_transparent_pixels_blend_with_white():
    source = Image.new("RGBA", (4, 4), (0, 0, 255, 128))
    assert decode(encode(source, "png")).getpixel((0, 0)) == (127, 127, 255)


def test_transparent_does_not_invent_alpha_for_opaque_images():
    assert decode(encode(card(), "png", transparent=True)).mode == "RGB"


def test_pdf_is_left_to_the_pdf_painter():
    with pytest.raises(RendererError, match="renderer.pdf"):
        encode(card(), "pdf")


@pytest.mark.parametrize("quality", [0, 101, -5])
def test_quality_out_of_range_is_rejected(quality):
    with pytest.raises(RendererError) as caught:
        encode(card(), "jpeg", quality=quality)
    assert caught.value.code == "invalid_option"


# --- encode_frames ---------------------------------------------------------------------------


def moving_square_frames(count=4, size=(120, 80)):
    frames = []
    for index in range(count):
        frame = card(*size)
        frame.paste((230, 40, 40), (10 + 25 * index, 20, 40 + 25 * index, 50))
        frames.append(frame)
    return frames


def decoded_frames(data):
    animation = decode(data)
    frames, durations = [], []
    for index in range(animation.n_frames):
        animation.seek(index)
        frames.append(animation.convert("RGB"))
        durations.append(animation.info["duration"])
    return animation, frames, durations


@pytest.mark.parametrize("fmt", ["gif", "webp"])
def test_animations_keep_frames_durations_and_loop(fmt):
    sources, durations = moving_square_frames(), [100, 200, 300, 400]
    animation, frames, read_durations = decoded_frames(
        encode_frames(sources, durations, format=fmt)
    )
    assert animation.format == fmt.upper()
    assert animation.is_animated and animation.n_frames == 4
    assert read_durations == durations
    assert animation.info.get("loop") == 0
    for frame, source in zip(frames, sources, strict=True):
        assert frame.size == source.size
        assert mean_abs_diff(frame, source) < 4  # each frame composes cleanly: no smearing
    for earlier, later in pairwise(frames):
        assert mean_abs_diff(earlier, later) > 1


def test_animated_gif_loop_count_and_transparency_flattened():
    frames = [Image.new("RGBA", (20, 20), (0, 0, 255, 0)), Image.new("RGBA", (20, 20), "red")]
    animation, decoded, _ = decoded_frames(encode_frames(frames, [50, 50], loop=3))
    assert animation.info["loop"] == 3
    assert decoded[0].getpixel((5, 5)) == (255, 255, 255)
    assert decoded[1].getpixel((5, 5)) == (255, 0, 0)


@pytest.mark.parametrize(
    ("frames", "durations"),
    [([], []), ([Image.new("RGB", (4, 4))], [100, 100]), ([Image.new("RGB", (4, 4))], [0])],
    ids=["empty", "mismatched", "zero-duration"],
)
def test_animations_reject_bad_input(frames, durations):
    with pytest.raises(RendererError):
        encode_frames(frames, durations)


def test_animation_frames_must_share_a_size():
    frames = [Image.new("RGB", (4, 4)), Image.new("RGB", (5, 4))]
    with pytest.raises(RendererError, match="size"):
        encode_frames(frames, [100, 100])


def test_animations_cannot_be_png():
    with pytest.raises(RendererError) as caught:
        encode_frames(moving_square_frames(2), [100, 100], format="png")
    assert caught.value.code == "unsupported_format"


# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("png", "png"),
        (".png", "png"),
        ("PNG", "png"),
        (" png ", "png"),
        ("image/png", "png"),
        ("jpg", "jpeg"),
        ("JPG", "jpeg"),
        ("jpeg", "jpeg"),
        (".jpg", "jpeg"),
        ("image/jpeg", "jpeg"),
        ("image/jpg", "jpeg"),
        ("webp", "webp"),
        ("image/avif", "avif"),
        ("GIF", "gif"),
        ("application/pdf", "pdf"),
        ("pdf", "pdf"),
    ],
)
def test_normalize_format_aliases(name, expected):
    assert normalize_format(name) == expected


def test_unknown_format_lists_the_supported_ones():
    with pytest.raises(RendererError) as caught:
        normalize_format("bmp")
    assert caught.value.code == "unsupported_format"
    assert "'bmp'" in caught.value.message
    for fmt in FORMATS:
        assert fmt in caught.value.message


def test_every_format_has_a_mime_type_and_an_extension():
    assert FORMATS.keys() == EXTENSIONS.keys() == {"png", "jpeg", "webp", "avif", "gif", "pdf"}
    assert EXTENSIONS["jpeg"] == "jpg"
    assert FORMATS["avif"] == "image/avif"


def test_png_quality_trades_speed_for_size_without_losing_pixels():
    # the demo photo: real structure where compression effort shows
    photo = Path(__file__).resolve().parents[2] / "renderer" / "demo" / "photo.jpg"
    image = Image.open(photo).convert("RGB").crop((0, 0, 600, 400))
    fast = encode(image, "png")
    small = encode(image, "png", quality=90)
    assert len(small) < len(fast) * 0.95
    for data in (fast, small):
        assert np.array_equal(np.asarray(decode(data).convert("RGB")), np.asarray(image))
