"""Shared test helpers: golden images compared with a per-pixel tolerance, in the spirit of
Pillow's ``Tests/helper.py``, plus small conveniences for render output and data: sources.

Goldens live in ``tests/renderer/images/<name>.png``. Run the suite with
``PIXELMERGE_UPDATE_GOLDEN=1`` to (re)write them instead of comparing, then look at each one
before committing it.
"""

from __future__ import annotations

import base64
import io
import os
import tempfile
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

IMAGES = Path(__file__).parent / "renderer" / "images"
UPDATE_ENV = "PIXELMERGE_UPDATE_GOLDEN"


def golden(name: str) -> Path:
    """The reference picture ``tests/renderer/images/<name>.png``."""
    return IMAGES / f"{name}.png"


def updating_goldens() -> bool:
    return os.environ.get(UPDATE_ENV) == "1"


def open_image(data: bytes) -> Image.Image:
    """Decode render output (any raster format) into a loaded PIL image."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def png_data_uri(image: Image.Image) -> str:
    """``data:image/png;base64,…`` for ``image``: an image source that needs no asset store."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def rgba(image: Image.Image) -> np.ndarray:
    """The pixels as an int16 (height, width, 4) array, safe to subtract."""
    return np.asarray(image.convert("RGBA"), dtype=np.int16)


def assert_image_close(actual: Image.Image, expected: Image.Image | str | Path, *,
                       max_mean: float = 1.0, max_pixel_fraction: float = 0.002,
                       threshold: int = 32, save_to: Path | None = None) -> None:
    """Fail unless ``actual`` matches ``expected`` (an image or a golden's path).

    Two measures, both over RGBA channels: the mean absolute difference (0-255) must be at most
    ``max_mean``, and at most ``max_pixel_fraction`` of the pixels may differ by more than
    ``threshold`` in any channel. On failure the actual picture and a diff are saved next to the
    golden (or into ``save_to`` / a temporary folder) and the message says where.
    """
    path = None if isinstance(expected, Image.Image) else Path(expected)
    if path is not None:
        if updating_goldens():
            path.parent.mkdir(parents=True, exist_ok=True)
            actual.save(path, optimize=True)
            return
        if not path.exists():
            pytest.fail(f"no golden image {path}; create it with {UPDATE_ENV}=1 and look at it")
        expected = open_image(path.read_bytes())
    problems = image_differences(actual, expected, max_mean=max_mean,
                                 max_pixel_fraction=max_pixel_fraction, threshold=threshold)
    if problems:
        where = _save_failure(actual, expected, path, save_to, threshold)
        pytest.fail(f"{'; '.join(problems)} ({where})")


def image_differences(actual: Image.Image, expected: Image.Image, *, max_mean: float,
                      max_pixel_fraction: float, threshold: int) -> list[str]:
    """What is wrong with ``actual`` compared to ``expected``; empty when they are close."""
    if actual.size != expected.size:
        return [f"size {actual.size} differs from the expected {expected.size}"]
    diff = np.abs(rgba(actual) - rgba(expected))
    problems = []
    mean = float(diff.mean())
    if mean > max_mean:
        problems.append(f"mean difference {mean:.3f} exceeds {max_mean}")
    fraction = float((diff.max(axis=-1) > threshold).mean())
    if fraction > max_pixel_fraction:
        problems.append(f"{fraction:.4%} of pixels differ by more than {threshold}, "
                        f"allowed {max_pixel_fraction:.4%}")
    return problems


def diff_image(actual: Image.Image, expected: Image.Image, threshold: int = 32) -> Image.Image:
    """The expected picture dimmed for context, small differences in grey (amplified x4) and
    pixels past ``threshold`` in red."""
    diff = np.abs(rgba(actual) - rgba(expected)).max(axis=-1)
    context = np.asarray(expected.convert("L"), dtype=np.int16) * 3 // 10
    grey = np.clip(np.maximum(context, diff * 4), 0, 255).astype(np.uint8)
    picture = np.stack([grey, grey, grey], axis=-1)
    picture[diff > threshold] = (255, 0, 0)
    return Image.fromarray(picture, "RGB")


def _save_failure(actual: Image.Image, expected: Image.Image, path: Path | None,
                  save_to: Path | None, threshold: int) -> str:
    stem = path.stem if path is not None else "image"
    folder = save_to or (path.parent if path is not None else
                         Path(tempfile.mkdtemp(prefix="pixelmerge-image-")))
    actual_path, diff_path = folder / f"{stem}.actual.png", folder / f"{stem}.diff.png"
    actual.save(actual_path)
    diff_path.unlink(missing_ok=True)  # never leave a diff from an earlier run
    if actual.size != expected.size:
        return f"actual saved as {actual_path}"
    diff_image(actual, expected, threshold).save(diff_path)
    return f"actual and diff saved as {actual_path} and {diff_path}"


class FakeFetch:
    """A stand-in for the guarded HTTP session: serves ``responses`` (URL -> bytes, or an
    exception to raise) and records every URL it was asked for. No network."""

    def __init__(self, responses: Mapping[str, bytes | Exception]):
        self.responses = dict(responses)
        self.calls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.calls.append(url)
        answer = self.responses.get(url)
        if answer is None:
            raise LookupError(f"404 Not Found: {url}")
        if isinstance(answer, Exception):
            raise answer
        return answer


def solid(color: str | tuple, size: tuple[int, int] = (8, 8), mode: str = "RGBA") -> Image.Image:
    return Image.new(mode, size, color)


def color_at(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    return image.convert("RGBA").getpixel(xy)


def close_to(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 3) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def error_of(response, status: int) -> dict:
    """The JSON error of an API answer, after checking its status and content type."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    return response.json()["error"]


def ink(image: Image.Image, rgb: tuple[int, int, int], tolerance: int = 40) -> int:
    """How many pixels are within ``tolerance`` of ``rgb`` in every channel."""
    return int((np.abs(rgba(image)[..., :3] - rgb).max(axis=-1) <= tolerance).sum())


@contextmanager
def picture_site(color: tuple[int, int, int], delay: float):
    """A remote site on loopback (allowlisted in the web tests) whose picture, a small square of
    ``color``, takes ``delay`` seconds to arrive. Yields its URL."""
    import http.server
    import threading
    import time

    picture = png_bytes(solid(color, (8, 8)))

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            time.sleep(delay)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(picture)))
            self.end_headers()
            self.wfile.write(picture)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/photo.png"
    finally:
        server.shutdown()
        server.server_close()
