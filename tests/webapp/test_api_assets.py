"""``/assets``: uploaded pictures and fonts, and templates that use them (``asset:<name>`` and
font families), against the running server."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from fontTools import subset
from fontTools.ttLib import TTFont
from helpers import error_of, ink, open_image, png_bytes, rgba
from PIL import Image

import renderer
from renderer.api import directory_assets

NOTO = Path("/usr/share/fonts/truetype/noto")
BLUE = (37, 99, 235)
ORANGE = (234, 88, 12)
MONO_TEXT = "Mono 42"

LOGO = {
    "name": "Logo", "width": 100, "height": 50, "background": "#ffffff",
    "layers": [
        {"name": "logo", "type": "image", "x": 0, "y": 0, "width": 50, "height": 50,
         "src": "asset:logo.png", "fit": "fill"},
        {"name": "caption", "type": "text", "x": 55, "y": 5, "width": 40, "height": 40,
         "text": "{{ caption }}", "size": 12},
    ],
}


def lettering(font: str, weight: int = 400, text: str = "Hamburgefonstiv") -> dict:
    return {"name": f"Lettering {font}", "width": 400, "height": 80, "background": "#ffffff",
            "layers": [{"name": "text", "type": "text", "x": 10, "y": 10, "width": 380,
                        "height": 60, "text": text, "font": font, "weight": weight,
                        "size": 36, "fit": "overflow", "color": "#000000"}]}


@pytest.fixture(scope="module")
def mono_woff2() -> bytes:
    """Noto Sans Mono Bold cut down to the glyphs of MONO_TEXT, as WOFF2."""
    font = TTFont(NOTO / "NotoSansMono-Bold.ttf")
    subsetter = subset.Subsetter()
    subsetter.populate(text=MONO_TEXT)
    subsetter.subset(font)
    font.flavor = "woff2"
    buffer = io.BytesIO()
    font.save(buffer)
    return buffer.getvalue()


def upload(api, filename: str, data: bytes, **form):
    return api.post("/assets", files={"file": (filename, data)}, data=form)


def create(api, content: dict) -> int:
    response = api.post("/templates", json=content)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def rendered(api, template: int, **body) -> Image.Image:
    response = api.post("/renders", json={"template": template, **body})
    assert response.status_code in (200, 201), response.text
    served = api.get(response.json()["url"])
    assert served.status_code == 200
    return open_image(served.content)


def solid_png(rgb: tuple[int, int, int], size: tuple[int, int] = (20, 20)) -> bytes:
    return png_bytes(Image.new("RGB", size, rgb))


def bomb_png(width: int = 30_000, height: int = 30_000) -> bytes:
    """A PNG declaring 900 megapixels in a few hundred bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(
        b"IDAT", zlib.compress(b"\x00" * (width + 1) * 4)) + chunk(b"IEND", b"")


# ---------------------------------------------------------------- pictures

def test_an_uploaded_picture_is_what_templates_draw(api, tmp_path):
    made = upload(api, "logo.png", solid_png(BLUE))
    assert made.status_code == 201, made.text
    asset = made.json()
    assert (asset["name"], asset["ref"], asset["kind"], asset["content_type"]) == (
        "logo.png", "asset:logo.png", "image", "image/png")
    assert asset["size"] == len(solid_png(BLUE)) and len(asset["sha256"]) == 64
    assert (asset["family"], asset["weight"]) == (None, None)
    assert api.get("/assets").json()["data"] == [asset]

    template = create(api, LOGO)
    first = rendered(api, template, variables={"caption": "one"})
    assert exact_ink(first.crop((0, 0, 50, 50)), BLUE) == 50 * 50

    replaced = upload(api, "logo.png", solid_png(ORANGE))
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["id"] == asset["id"] and replaced.json()["sha256"] != asset["sha256"]
    listed = api.get("/assets").json()["data"]
    assert [a["sha256"] for a in listed] == [replaced.json()["sha256"]]

    second = rendered(api, template, variables={"caption": "two"})
    assert exact_ink(second.crop((0, 0, 50, 50)), ORANGE) == 50 * 50
    # the very request that drew the blue logo is a new request now: not the cached blue one
    again = api.post("/renders", json={"template": template, "variables": {"caption": "one"}})
    assert again.status_code == 201 and again.json()["cached"] is False, again.text
    picture = open_image(api.get(again.json()["url"]).content)
    assert exact_ink(picture.crop((0, 0, 50, 50)), ORANGE) == 50 * 50
    preview = api.post(f"/templates/{template}/preview", json={})
    assert exact_ink(open_image(preview.content).crop((0, 0, 50, 50)), ORANGE) == 50 * 50


def test_the_demo_card_renders_with_uploaded_assets_like_the_library(api, demo_dir):
    for name in ("photo.jpg", "logo.png"):
        response = upload(api, name, (demo_dir / name).read_bytes())
        assert response.status_code == 201, response.text
        assert response.json()["content_type"] == ("image/jpeg" if name.endswith("jpg")
                                                   else "image/png")
    card = json.loads((demo_dir / "card.json").read_text())
    template = create(api, card)
    variables = {"title": "Linen shirts", "price": 30, "on_sale": True}
    served = rendered(api, template, variables=variables)
    assert served.size == (1200, 630)
    local = renderer.render(card, variables, assets=directory_assets(demo_dir))
    assert np.array_equal(rgba(served), rgba(open_image(local.data)))


def test_another_workspace_cannot_use_my_assets(api, other_api):
    assert upload(api, "logo.png", solid_png(BLUE)).status_code == 201
    assert other_api.get("/assets").json()["data"] == []
    theirs = create(other_api, LOGO)
    response = other_api.post("/renders", json={"template": theirs,
                                                "variables": {"caption": "x"}})
    error = error_of(response, 422)
    assert "no asset named 'logo.png'" in error["message"]
    assert error["details"]["path"] == "layers[0].src"
    preview = other_api.post(f"/templates/{theirs}/preview", json={})
    assert "no asset named 'logo.png'" in error_of(preview, 422)["message"]
    mine = create(api, LOGO)
    assert exact_ink(rendered(api, mine, variables={"caption": "x"}).crop((0, 0, 50, 50)),
               BLUE) == 50 * 50


# ---------------------------------------------------------------- fonts

def test_uploaded_fonts_are_detected_and_render_like_the_same_font_bundled(api, mono_woff2):
    serif = (NOTO / "NotoSerif-Regular.ttf").read_bytes()
    detected = upload(api, "serif.ttf", serif)
    assert detected.status_code == 201, detected.text
    assert {k: detected.json()[k] for k in ("kind", "content_type", "family", "weight")} == {
        "kind": "font", "content_type": "font/ttf", "family": "Noto Serif", "weight": 400}
    brand = upload(api, "brand.ttf", serif, family="Brand")
    assert (brand.json()["family"], brand.json()["weight"]) == ("Brand", 400)

    mono = upload(api, "mono.woff2", mono_woff2)
    assert mono.status_code == 201, mono.text
    assert {k: mono.json()[k] for k in ("content_type", "family", "weight")} == {
        "content_type": "font/woff2", "family": "Noto Sans Mono", "weight": 700}
    code = upload(api, "code.woff2", mono_woff2, family="Code", weight="700")
    assert (code.json()["family"], code.json()["weight"]) == ("Code", 700)
    for weight in ("bold", "0", "1001"):
        bad = upload(api, "code.woff2", mono_woff2, family="Code", weight=weight)
        assert error_of(bad, 400)["code"] == "invalid_request"
    assert len(api.get("/assets").json()["data"]) == 4

    uploaded = rgba(rendered(api, create(api, lettering("Brand"))))
    bundled = rgba(rendered(api, create(api, lettering("Noto Serif"))))
    sans = rgba(rendered(api, create(api, lettering("Noto Sans"))))
    assert (uploaded < 128).any()  # there is ink
    assert np.array_equal(uploaded, bundled)
    assert not np.array_equal(uploaded, sans)

    uploaded = rgba(rendered(api, create(api, lettering("Code", 700, MONO_TEXT))))
    bundled = rgba(rendered(api, create(api, lettering("Noto Sans Mono", 700, MONO_TEXT))))
    assert np.array_equal(uploaded, bundled)

    unknown = api.post("/renders", json={"template": create(api, lettering("Nope"))})
    assert error_of(unknown, 422)["details"]["path"] == "layers[0].font"


# ---------------------------------------------------------------- refusals

@pytest.mark.parametrize("settings", [{"MAX_ASSET_BYTES": 50_000, "MAX_IMAGE_PIXELS": 1_000_000}])
def test_uploads_that_are_refused(api):
    cases = [
        (upload(api, "notes.txt", b"just some text"), 415, "unsupported_media_type"),
        (upload(api, "fake.woff2", b"wOF2" + b"\x00" * 200), 415, "unsupported_media_type"),
        (upload(api, "fake.ttf", b"\x00\x01\x00\x00garbage"), 415, "unsupported_media_type"),
        (api.post("/assets", json={"file": "logo.png"}), 415, "unsupported_media_type"),
        (upload(api, "empty.png", b""), 400, "invalid_request"),
        (api.post("/assets", files={"picture": ("logo.png", solid_png(BLUE))}), 400,
         "invalid_request"),
        (upload(api, "big.png", np.random.default_rng(1).bytes(60_000)), 413,
         "payload_too_large"),
        (upload(api, "bomb.png", bomb_png()), 422, "limit_exceeded"),
        (upload(api, "wide.png", solid_png(BLUE, (2000, 1000))), 422, "limit_exceeded"),
    ]
    for name in ("../logo.png", ".hidden.png", "my logo.png", "x" * 201, "logo.png/"):
        cases.append((upload(api, "logo.png", solid_png(BLUE), name=name), 400,
                      "invalid_request"))
    for response, status, code in cases:
        assert error_of(response, status)["code"] == code, response.request.body[:200]
    assert api.get("/assets").json()["data"] == []
    assert upload(api, "logo.png", solid_png(BLUE)).status_code == 201


def exact_ink(image: Image.Image, rgb: tuple[int, int, int]) -> int:
    """Pixels of exactly (within 8 of) a flat uploaded colour."""
    return ink(image, rgb, tolerance=8)
