"""PNG encoding: our ``encode_png`` next to Pillow's PNG writer, with JPEG for scale.

    .venv/bin/python bench/encode_png.py [--runs 150]

The canvas is a 1200x630 card of the kinds of pixels renders are made of: a diagonal
gradient, a 600x630 photo-like region (smooth structure, blotches and grain, seeded so every
run sees the same bytes), flat rectangles and antialiased text. Variants are timed round-robin,
so a noisy neighbour on the host slows all of them alike, and the median is reported.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from renderer.encode import _bands, encode_png

FONT = "/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf"
WIDTH, HEIGHT, PHOTO_WIDTH = 1200, 630, 600


def build_card() -> Image.Image:
    pixels = _gradient(WIDTH, HEIGHT)
    pixels[:, WIDTH - PHOTO_WIDTH :] = _photo(PHOTO_WIDTH, HEIGHT)
    card = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(card)
    draw.rectangle((40, 40, 560, 120), fill=(255, 255, 255))
    draw.rectangle((40, 500, 300, 580), fill=(20, 20, 30))
    title, body = ImageFont.truetype(FONT, 56), ImageFont.truetype(FONT, 28)
    draw.text((60, 50), "Pixelmerge", font=title, fill=(20, 20, 30))
    draw.text((60, 160), "Self-hosted image generation", font=body, fill=(255, 255, 255))
    draw.text((60, 210), "Templates plus data become images.", font=body, fill=(240, 240, 255))
    draw.text((60, 520), "Read more", font=body, fill=(255, 255, 255))
    return card


def _gradient(width: int, height: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (x / width + y / height) / 2
    return np.stack([40 + 180 * t, 60 + 100 * (1 - t), 200 - 120 * t], axis=-1)


def _photo(width: int, height: int) -> np.ndarray:
    """Not white noise, which no codec can shrink and would flatter nobody: smooth colour
    structure, blurred luminance blotches and a little sensor-like grain."""
    rng = np.random.default_rng(1234)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    structure = np.stack(
        [
            128 + 90 * np.sin(x / 37.0) * np.cos(y / 53.0),
            110 + 70 * np.cos(x / 71.0 + y / 29.0),
            90 + 60 * np.sin((x + y) / 97.0),
        ],
        axis=-1,
    )
    coarse = rng.normal(0, 30, size=(height // 8 + 2, width // 8 + 2, 1)) * [1.0, 0.9, 0.8]
    blotches = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1)[:height, :width]
    kernel = np.ones(9) / 9
    for axis in (0, 1):
        blotches = np.apply_along_axis(np.convolve, axis, blotches, kernel, "same")
    return structure + blotches + rng.normal(0, 5, size=structure.shape)


def _pillow(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def variants(card: Image.Image) -> dict[str, Callable[[], bytes]]:
    return {
        "Pillow PNG (default level)": lambda: _pillow(card, "PNG"),
        "Pillow PNG compress_level=1": lambda: _pillow(card, "PNG", compress_level=1),
        "encode_png threads=1": lambda: _fresh(card, threads=1),
        "encode_png threads=2": lambda: _fresh(card, threads=2),
        "encode_png, a new price": _new_price(card),
        "JPEG q90 (reference)": lambda: _pillow(card, "JPEG", quality=90),
    }


def _fresh(card: Image.Image, threads: int) -> bytes:
    """Pixels never seen before: no band is reused."""
    _bands.clear()
    return encode_png(card, threads=threads)


def _new_price(card: Image.Image) -> Callable[[], bytes]:
    """The card again with a new price drawn in its corner each time, as a batch or a live
    banner renders it: only the bands the price touches are deflated (the time includes
    copying the card and drawing the price)."""
    font = ImageFont.truetype(FONT, 56)
    prices = iter(range(10**9))

    def encode() -> bytes:
        priced = card.copy()
        draw = ImageDraw.Draw(priced)
        draw.rectangle((40, 500, 300, 580), fill=(20, 20, 30))
        draw.text((60, 505), f"${next(prices)}", font=font, fill=(255, 255, 255))
        return encode_png(priced)

    return encode


def measure(cases: dict[str, Callable[[], bytes]], runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(3):  # warm caches, fonts, the thread pool
        for encode in cases.values():
            encode()
    for _ in range(runs):
        for name, encode in cases.items():
            start = time.perf_counter()
            encode()
            times[name].append((time.perf_counter() - start) * 1000)
    return times


def check_round_trip(card: Image.Image) -> None:
    decoded = Image.open(io.BytesIO(encode_png(card)))
    if not np.array_equal(np.asarray(decoded), np.asarray(card)):
        raise SystemExit("encode_png output does not decode to the source pixels")


def print_table(cases: dict[str, Callable[[], bytes]], times: dict[str, list[float]]) -> None:
    reference = statistics.median(times["Pillow PNG (default level)"])
    reference_size = len(next(iter(cases.values()))())
    print(f"{'variant':30} {'median ms':>9} {'p10 ms':>7} {'speedup':>8} {'bytes':>9} {'size':>7}")
    for name, encode in cases.items():
        median = statistics.median(times[name])
        p10 = statistics.quantiles(times[name], n=10)[0]
        size = len(encode())
        print(
            f"{name:30} {median:9.2f} {p10:7.2f} {reference / median:7.1f}x"
            f" {size:9,d} {size / reference_size:6.1%}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=150, help="timed runs per variant")
    runs = parser.parse_args().runs
    card = build_card()
    check_round_trip(card)
    cases = variants(card)
    print(f"{WIDTH}x{HEIGHT} RGB card, median of {runs} warm runs each, round-robin")
    print_table(cases, measure(cases, runs))


if __name__ == "__main__":
    main()
