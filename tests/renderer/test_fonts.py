"""Font resolution: template fonts from assets (TTF and WOFF2), bundled families, weights,
fallback chains, and the errors a user sees for unknown families and broken font files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from fontTools.ttLib import TTFont
from PIL import Image

from renderer import ResourceError, TemplateError, load_template, render, render_scene
from renderer.api import directory_assets
from renderer.fonts import BUNDLED, FontResolver, nearest_weight

NOTO = Path("/usr/share/fonts/truetype/noto")


def _template(font: str, weight: int = 400, fonts: dict | None = None) -> dict:
    return {
        "width": 400, "height": 120, "background": "#ffffff", "fonts": fonts or {},
        "layers": [{"name": "t", "type": "text", "x": 10, "y": 10, "width": 380, "height": 100,
                    "text": "Hamburgefonstiv", "font": font, "weight": weight, "size": 40,
                    "fit": "overflow"}],
    }


@pytest.fixture(scope="module")
def font_assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp_path = tmp_path_factory.mktemp("fonts")
    (tmp_path / "brand.ttf").write_bytes((NOTO / "NotoSerif-Bold.ttf").read_bytes())
    font = TTFont(NOTO / "NotoSansMono-Regular.ttf")
    font.flavor = "woff2"
    font.save(tmp_path / "brand-mono.woff2")
    (tmp_path / "broken.ttf").write_bytes(b"this is not a font at all")
    return tmp_path


def _face_path(template: dict, assets) -> str:
    scene = render_scene(load_template(template), {}, assets=assets)
    return scene.items[0].runs[0].face.path


def _ink(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("L")) < 128


def test_template_font_from_an_asset_is_used_and_draws_like_the_file(font_assets):
    assets = directory_assets(font_assets)
    mine = _template("Brand", fonts={"Brand": {"700": "asset:brand.ttf"}})
    bundled = _template("Noto Serif", 700)
    path = _face_path(mine, assets)
    assert Path(path).read_bytes()[:4] in (b"\x00\x01\x00\x00", b"OTTO")
    ours = _ink(render(load_template(mine), {}, assets=assets).data)
    reference = _ink(render(load_template(bundled), {}).data)
    assert ours.sum() > 500
    assert np.mean(ours != reference) < 0.002  # the same face, the same pixels


def test_woff2_font_is_unpacked_for_both_painters(font_assets):
    assets = directory_assets(font_assets)
    template = _template("Mono", fonts={"Mono": "asset:brand-mono.woff2"})
    path = _face_path(template, assets)
    assert TTFont(path).flavor is None  # a plain sfnt that FreeType and WeasyPrint both read
    pdf = render(load_template(template), {}, format="pdf", assets=assets)
    from renderer.pdf import pdf_text

    assert pdf_text(pdf.data)[0].strip() == "Hamburgefonstiv"


def test_broken_font_file_is_a_resource_error_naming_the_font(font_assets):
    template = _template("Bad", fonts={"Bad": "asset:broken.ttf"})
    with pytest.raises(ResourceError) as info:
        render(load_template(template), {}, assets=directory_assets(font_assets))
    assert info.value.path == "fonts.Bad.400"
    assert "not a usable font file" in info.value.message


def test_missing_font_asset_names_it(font_assets):
    template = _template("Gone", fonts={"Gone": "asset:nope.ttf"})
    with pytest.raises(ResourceError) as info:
        render(load_template(template), {}, assets=directory_assets(font_assets))
    assert "nope.ttf" in str(info.value)


def test_unknown_family_names_the_layer_and_lists_what_exists():
    with pytest.raises(TemplateError) as info:
        render(load_template(_template("Comic Sans")), {})
    assert info.value.path == "layers[0].font"
    assert "unknown font 'Comic Sans'" in info.value.message
    assert "noto sans" in info.value.message


@pytest.mark.parametrize(("weight", "expected"), [(100, 400), (400, 400), (550, 700),
                                                  (500, 400), (900, 700)])
def test_weights_pick_the_nearest_face(weight, expected):
    assert nearest_weight([400, 700], weight) == expected
    face = FontResolver().face("Noto Sans", weight, path="x")
    assert face == BUNDLED["noto sans"][expected]


def test_aliases_and_case_resolve_to_bundled_families():
    resolver = FontResolver()
    assert resolver.face("SANS-SERIF", 400, path="x") == BUNDLED["noto sans"][400]
    assert resolver.face("serif", 700, path="x") == BUNDLED["noto serif"][700]
    assert resolver.face("monospace", 400, path="x") == BUNDLED["noto sans mono"][400]


def test_workspace_fonts_come_before_bundled_ones():
    extra = {"Noto Sans": {400: str(NOTO / "NotoSerif-Regular.ttf")}}
    face = FontResolver(extra=extra).face("Noto Sans", 400, path="x")
    assert face.path.endswith("NotoSerif-Regular.ttf")


def test_every_bundled_font_file_is_installed():
    # make setup installs these from Debian packages; a missing one would mean tofu
    for faces in BUNDLED.values():
        for face in faces.values():
            assert Path(face.path).is_file(), face.path


def test_fallback_chain_puts_the_primary_first_and_the_emoji_font_last():
    resolver = FontResolver()
    primary = resolver.face("Noto Serif", 700, path="x")
    chain = resolver.chain(primary, 700)
    assert chain[0] == primary
    assert chain[-1].bitmap_size is not None
    assert len(set(chain)) == len(chain)


def test_a_stamped_font_asset_is_read_once_until_it_changes(tmp_path):
    from renderer.assets import DirectoryAssets

    class Counting(DirectoryAssets):
        reads: list[str] = []

        def __call__(self, name):
            Counting.reads.append(name)
            return super().__call__(name)

    (tmp_path / "brand.ttf").write_bytes((NOTO / "NotoSerif-Bold.ttf").read_bytes())
    assets = Counting(tmp_path)
    template = load_template(_template("Brand", fonts={"Brand": "asset:brand.ttf"}))
    first = _face_path(template.source, assets)
    render(template, {}, assets=assets)
    render(template, {}, assets=assets)
    assert Counting.reads == ["brand.ttf"]
    (tmp_path / "brand.ttf").write_bytes((NOTO / "NotoSans-Regular.ttf").read_bytes())
    assert _face_path(template.source, assets) != first  # a re-upload is picked up
    assert Counting.reads == ["brand.ttf", "brand.ttf"]
