"""The PDF painter draws the same scene as Pillow would, keeps text as text and shapes as
vectors, and loads nothing it should not."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pypdfium2 as pdfium
import pytest
from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw, ImageFont

from renderer import pdf
from renderer.errors import ResourceError
from renderer.scene import (
    Box,
    Color,
    Common,
    FontFace,
    GradientStop,
    ImageItem,
    LinearGradient,
    QRItem,
    Run,
    Scene,
    Shadow,
    ShapeItem,
    TextItem,
)

NOTO = "/usr/share/fonts/truetype/noto/"
LATIN = FontFace(NOTO + "NotoSans-Bold.ttf")
LATIN_REGULAR = FontFace(NOTO + "NotoSans-Regular.ttf")
ARABIC = FontFace(NOTO + "NotoSansArabic-Regular.ttf")
CJK_JP = FontFace("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 0)
CJK_SC = FontFace("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2)
EMOJI = FontFace(NOTO + "NotoColorEmoji.ttf", bitmap_size=109)
BLACK, WHITE = Color(0, 0, 0), Color(255, 255, 255)

# --- building scenes by hand, measuring with Pillow --------------------------------------------


def pil_font(face: FontFace, size: float) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(face.path, face.bitmap_size or size, index=face.index)


def make_run(text: str, face: FontFace, size: float, x: float, baseline: float,
             direction: str = "ltr", **extra) -> Run:
    if face.bitmap_size:
        width = pil_font(face, size).getlength(text) * size / face.bitmap_size
        return Run(text, face, size, x, baseline, width, emoji=True)
    width = pil_font(face, size).getlength(text, direction=direction)
    return Run(text, face, size, x, baseline, width, direction, **extra)


def text_item(runs: tuple[Run, ...], box: Box, **extra) -> TextItem:
    lines = extra.pop("lines", ("".join(run.text for run in runs),))
    return TextItem(Common("text", box), runs, extra.pop("color", BLACK), runs[0].size, lines,
                    **extra)


def white_scene(*items, width: int = 800, height: int = 200) -> Scene:
    return Scene(width, height, WHITE, list(items))


def painted(*items, **size) -> Image.Image:
    """The items on a white page, through the PDF and back to pixels at scale 1."""
    return pdf.rasterize_pdf(pdf.paint_pdf(white_scene(*items, **size)))


def pillow_text(item: TextItem, size: tuple[int, int]) -> Image.Image:
    """What the raster painter draws for plain runs: each run at its baseline, anchor "ls"."""
    image = Image.new("RGB", size, WHITE.rgba[:3])
    draw = ImageDraw.Draw(image)
    box = item.common.box
    for run in item.runs:
        draw.text((box.x + run.x, box.y + run.baseline), run.text, anchor="ls",
                  font=pil_font(run.face, run.size), fill=item.color.rgba,
                  direction=run.direction)
    return image


# --- comparing pictures -----------------------------------------------------------------------


def ink(image: Image.Image) -> np.ndarray:
    """Darkness 0..255 of each pixel against a white page."""
    return 255.0 - np.asarray(image.convert("L"), dtype=np.float64)


def ink_box(image: Image.Image, threshold: float = 128) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(ink(image) >= threshold)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def centroid(image: Image.Image) -> tuple[float, float]:
    weights = ink(image)
    ys, xs = np.indices(weights.shape)
    return (xs * weights).sum() / weights.sum(), (ys * weights).sum() / weights.sum()


def assert_same_ink(got: Image.Image, want: Image.Image, *, tolerance: float = 1.0) -> None:
    """Same place (ink-weighted centre within ``tolerance`` px, ink boxes within 1 px) and same
    amount of ink (within 8%): the glyphs are the same size in the same position."""
    (gx, gy), (wx, wy) = centroid(got), centroid(want)
    assert abs(gx - wx) <= tolerance and abs(gy - wy) <= tolerance, ((gx, gy), (wx, wy))
    assert all(abs(a - b) <= 1 for a, b in zip(ink_box(got), ink_box(want), strict=True)), (
        ink_box(got), ink_box(want))
    assert ink(got).sum() == pytest.approx(ink(want).sum(), rel=0.08)


def page_sizes(document: bytes) -> list[tuple[float, float]]:
    pdf_document = pdfium.PdfDocument(document)
    try:
        return [page.get_size() for page in pdf_document]
    finally:
        pdf_document.close()


def png_bytes(color: tuple[int, int, int], size: tuple[int, int] = (8, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


# --- text ---------------------------------------------------------------------------------------

SCRIPTS = {
    "latin-bold": ("Pixelmerge AVATAR 2025", LATIN, 48.0, "ltr"),
    "latin-fractional-size": ("Hello fractional world", LATIN_REGULAR, 37.3, "ltr"),
    "arabic-rtl": ("مرحبا بالعالم", ARABIC, 40.0, "rtl"),
    "cjk-ttc-index-0": ("你好世界，日本語", CJK_JP, 44.0, "ltr"),
    "cjk-ttc-index-2": ("你好世界，简体中文", CJK_SC, 29.7, "ltr"),
}


@pytest.mark.parametrize("name", SCRIPTS)
def test_runs_land_where_pillow_draws_them(name):
    text, face, size, direction = SCRIPTS[name]
    run = make_run(text, face, size, x=13.4, baseline=70.6, direction=direction)
    item = text_item((run,), Box(20, 10, 760, 180))
    got = painted(item)
    assert_same_ink(got, pillow_text(item, got.size))


def test_text_stays_text_one_line_per_line():
    lines = ("Summer Sale", "مرحبا بالعالم", "你好世界", "简体中文")
    faces = (LATIN, ARABIC, CJK_JP, CJK_SC)
    directions = ("ltr", "rtl", "ltr", "ltr")
    runs = tuple(make_run(line, face, 40, 10, 60 + 70 * number, direction)
                 for number, (line, face, direction) in enumerate(zip(lines, faces, directions,
                                                                       strict=True)))
    item = text_item(runs, Box(40, 20, 1100, 560), lines=lines)
    document = pdf.paint_pdf(Scene(1200, 630, WHITE, [item]))
    assert page_sizes(document) == [(900, 472.5)]
    assert pdf.pdf_text(document)[0].split("\n") == list(lines)


def test_runs_of_one_line_in_several_fonts():
    latin = make_run("Price: ", LATIN, 40, 0, 50)
    arabic = make_run("مرحبا", ARABIC, 40, latin.width, 50, "rtl")
    item = text_item((latin, arabic), Box(30, 30, 700, 100))
    document = pdf.paint_pdf(white_scene(item))
    assert pdf.pdf_text(document) == ["Price: مرحبا"]
    got = pdf.rasterize_pdf(document)
    assert_same_ink(got, pillow_text(item, got.size))


def test_emoji_run_is_the_pillow_bitmap_scaled_to_the_run():
    label = make_run("Party ", LATIN, 40, 0, 50)
    emoji = make_run("🎉", EMOJI, 40, label.width, 50)
    item = text_item((label, emoji), Box(20, 20, 700, 100), lines=("Party 🎉",))
    got = painted(item)

    picture = pdf.emoji_image(emoji)
    assert picture.width == round(emoji.width)
    assert picture.height == pytest.approx(40 * 1.17, abs=1.5)  # the 109 px strike's ratio
    want = Image.new("RGBA", got.size, WHITE.rgba)
    ascent = pdf.emoji_ascent(emoji)
    want.alpha_composite(picture, (round(20 + emoji.x), round(20 + emoji.baseline - ascent)))
    region = (round(20 + emoji.x) - 2, 20, round(20 + emoji.x + emoji.width) + 2, 120)
    diff = np.abs(np.asarray(got.crop(region), dtype=float) -
                  np.asarray(want.convert("RGB").crop(region), dtype=float))
    assert diff.mean() < 6
    colours = np.asarray(got.crop(region).convert("HSV"))[..., 1]
    assert (colours > 128).sum() > 100  # a colour picture, not a black glyph


def test_stroke_and_shadow_go_under_the_text_which_stays_single():
    run = make_run("Outlined", LATIN, 60, 10, 80)
    item = text_item((run,), Box(20, 20, 600, 130), color=Color(255, 255, 0),
                     stroke=Color(255, 0, 0), stroke_width=4,
                     shadow=Shadow(Color(0, 0, 255, 255), 6, 6, 0))
    document = pdf.paint_pdf(white_scene(item))
    assert pdf.pdf_text(document) == ["Outlined"]  # the effects are not a second copy of text

    got = np.asarray(pdf.rasterize_pdf(document), dtype=int)
    want = Image.new("RGB", (800, 200), WHITE.rgba[:3])
    draw = ImageDraw.Draw(want)
    origin = (20 + run.x, 20 + run.baseline)
    font = pil_font(LATIN, 60)
    draw.text((origin[0] + 6, origin[1] + 6), run.text, font=font, anchor="ls",
              fill=(0, 0, 255), stroke_width=4, stroke_fill=(0, 0, 255))
    draw.text(origin, run.text, font=font, anchor="ls", fill=(255, 255, 0), stroke_width=4,
              stroke_fill=(255, 0, 0))
    want = np.asarray(want, dtype=int)
    for colour in ((255, 0, 0), (0, 0, 255), (255, 255, 0)):
        got_mask = (np.abs(got - colour).sum(axis=2) < 60)
        want_mask = (np.abs(want - colour).sum(axis=2) < 60)
        overlap = (got_mask & want_mask).sum() / max(1, want_mask.sum())
        assert overlap > 0.85, (colour, overlap)


def test_blurred_shadow_spreads_around_the_text():
    run = make_run("Soft", LATIN, 60, 10, 80)
    sharp = text_item((run,), Box(20, 20, 400, 130), shadow=Shadow(Color(0, 0, 0, 255), 0, 0, 0))
    blurred = text_item((run,), Box(20, 20, 400, 130),
                        shadow=Shadow(Color(0, 0, 0, 255), 0, 0, 12))
    grey = [(np.abs(ink(painted(item)) - 127) < 100).sum() for item in (sharp, blurred)]
    assert grey[1] > 3 * grey[0]


def test_letter_spacing_widens_the_run_to_its_width():
    plain = make_run("Spaced", LATIN_REGULAR, 40, 10, 60)
    spaced = Run("Spaced", LATIN_REGULAR, 40, 10, 60, plain.width + 6 * 10, letter_spacing=10)
    boxes = [ink_box(painted(text_item((run,), Box(0, 0, 600, 100)))) for run in (plain, spaced)]
    assert boxes[1][2] - boxes[0][2] == pytest.approx(5 * 10, abs=2)  # 5 gaps between 6 letters


def test_font_features_reach_the_pdf():
    ligature = make_run("office", LATIN_REGULAR, 40, 10, 60)
    without = Run("office", LATIN_REGULAR, 40, 10, 60, ligature.width, features=("-liga",))
    pictures = [np.asarray(painted(text_item((run,), Box(0, 0, 400, 100))).convert("L"))
                for run in (ligature, without)]
    assert (pictures[0] != pictures[1]).any()


@pytest.mark.parametrize("clip", [True, False])
def test_text_is_clipped_to_its_box_unless_told_otherwise(clip):
    run = make_run("Overflowing text", LATIN, 40, 0, 45)
    item = text_item((run,), Box(50, 50, 120, 60), clip=clip)
    right = ink_box(painted(item))[2]
    assert (right < 171) is clip


def test_face_inside_a_collection_is_served_as_its_own_file():
    path = pdf.face_file(CJK_SC)
    assert path != CJK_SC.path and pdf.face_file(CJK_SC) == path
    with TTFont(path, lazy=True) as font:
        assert font["name"].getDebugName(1) == "Noto Sans CJK SC"
    assert pdf.face_file(LATIN) == LATIN.path
    assert pdf.family_name(CJK_SC) != pdf.family_name(CJK_JP)


# --- shapes, images, QR, background -------------------------------------------------------------


def test_shapes_match_pillow():
    rect = ShapeItem(Common("rect", Box(40, 30, 200, 120)), "rect", Color(0, 0, 0),
                     Color(255, 0, 0), 10)
    ellipse = ShapeItem(Common("ellipse", Box(300, 30, 240, 140)), "ellipse", Color(0, 0, 0))
    got = painted(rect, ellipse)
    want = Image.new("RGB", got.size, (255, 255, 255))
    draw = ImageDraw.Draw(want)
    draw.rectangle((40, 30, 239, 149), fill=(0, 0, 0), outline=(255, 0, 0), width=10)
    draw.ellipse((300, 30, 539, 169), fill=(0, 0, 0))
    diff = np.abs(np.asarray(got, dtype=float) - np.asarray(want, dtype=float))
    assert diff.mean() < 1.5
    assert got.getpixel((45, 35)) == (255, 0, 0)  # the stroke is inside the box
    assert got.getpixel((100, 90)) == (0, 0, 0)


def test_shapes_are_vectors_with_sharp_edges_at_any_scale():
    rect = ShapeItem(Common("rect", Box(100, 50, 200, 100)), "rect", Color(0, 0, 0))
    document = pdf.paint_pdf(white_scene(rect))
    assert b"/Image" not in document
    big = np.asarray(pdf.rasterize_pdf(document, scale=3).convert("L"))
    assert big.shape == (600, 2400)
    row = big[300, 290:310]
    assert set(row.tolist()) <= {0, 255}  # no blurred, in-between pixels at the edge
    assert row.tolist().index(0) == 10  # the edge at 100 px lands at 300 px


def test_gradient_background_rotation_and_opacity():
    gradient = LinearGradient(90, (GradientStop(Color(255, 0, 0), 0),
                                   GradientStop(Color(0, 0, 255), 1)))
    faded = ShapeItem(Common("faded", Box(100, 50, 100, 100), opacity=0.5), "rect", BLACK)
    turned = ShapeItem(Common("turned", Box(500, 50, 100, 100), rotation=45), "rect", BLACK)
    got = pdf.rasterize_pdf(pdf.paint_pdf(Scene(800, 200, gradient, [faded, turned])))
    assert got.getpixel((2, 190))[0] > 245 and got.getpixel((797, 190))[2] > 245
    assert got.getpixel((150, 100))[0] == pytest.approx(got.getpixel((150, 190))[0] / 2, abs=3)
    # A square turned 45 degrees about its centre reaches out to half its diagonal.
    dark = np.nonzero(np.asarray(got.convert("L"))[:, 400:700] < 20)
    assert dark[1].min() + 400 == pytest.approx(550 - 70.7, abs=2)
    assert dark[0].min() == pytest.approx(100 - 70.7, abs=2)


def test_image_item_is_embedded_at_its_box():
    picture = Image.new("RGBA", (120, 80), (0, 128, 255, 255))
    item = ImageItem(Common("photo", Box(30, 40, 120, 80)), picture)
    got = painted(item)
    assert got.getpixel((31, 41)) == (0, 128, 255) and got.getpixel((148, 118)) == (0, 128, 255)
    assert got.getpixel((28, 38)) == (255, 255, 255) and got.getpixel((152, 122)) == (255, 255, 255)


def test_qr_modules_are_vector_squares():
    modules = tuple(tuple((x + y) % 2 == 0 or x == 0 for x in range(7)) for y in range(7))
    item = QRItem(Common("qr", Box(10, 10, 70, 70)), modules)
    document = pdf.paint_pdf(white_scene(item))
    assert b"/Image" not in document
    big = np.asarray(pdf.rasterize_pdf(document, scale=2).convert("L"))
    for y, row in enumerate(modules):
        for x, dark in enumerate(row):
            assert big[20 + y * 20 + 10, 20 + x * 20 + 10] == (0 if dark else 255)


def test_transparent_rasters_keep_alpha():
    dot = ShapeItem(Common("dot", Box(10, 10, 20, 20)), "rect", BLACK)
    document = pdf.paint_pdf(Scene(100, 50, None, [dot]))
    picture = pdf.rasterize_pdf(document, transparent=True)
    assert picture.mode == "RGBA" and picture.size == (100, 50)
    assert picture.getpixel((50, 40))[3] == 0 and picture.getpixel((15, 15)) == (0, 0, 0, 255)
    assert pdf.rasterize_pdf(document, scale=2.5).size == (250, 125)
    odd = pdf.paint_pdf(Scene(333, 77, WHITE, []))
    assert pdf.rasterize_pdf(odd, scale=3.3).size == (round(333 * 3.3), round(77 * 3.3))


# --- multi-page ---------------------------------------------------------------------------------


def test_merge_keeps_every_page_in_order():
    documents = [pdf.paint_pdf(white_scene(text_item((make_run(word, LATIN, 30, 0, 40),),
                                                     Box(10, 10, 300, 60)), width=400 + n))
                 for n, word in enumerate(("one", "two", "three"))]
    merged = pdf.merge_pdfs(documents)
    assert pdf.pdf_text(merged) == ["one", "two", "three"]
    assert [width for width, _ in page_sizes(merged)] == [300, 300.75, 301.5]
    with pytest.raises(ValueError):
        pdf.merge_pdfs([])


# --- HTML templates and what they may load --------------------------------------------------------


def test_html_page_has_the_template_size_and_loads_data_and_remote_images():
    requested = []

    def fetch(url: str) -> bytes:
        requested.append(url)
        return png_bytes((0, 0, 255))

    data_uri = "data:image/png;base64," + base64.b64encode(
        png_bytes((255, 0, 0))).decode()
    html = (f'<h1>Hello</h1><img src="{data_uri}" style="width:100px;height:50px;display:block">'
            '<img src="https://images.example/logo.png" style="width:100px;height:50px;'
            'display:block">')
    document = pdf.render_html(html, "h1 { margin: 0; font: 30px 'Noto Sans' }", width=400,
                               height=300, fetch=fetch)
    assert page_sizes(document) == [(300, 225)]
    assert pdf.pdf_text(document) == ["Hello"]
    assert requested == ["https://images.example/logo.png"]
    picture = pdf.rasterize_pdf(document)
    top = ink_box(picture.crop((0, 0, 400, 45)))[3] + 1
    assert picture.getpixel((50, top + 20)) == (255, 0, 0)
    assert picture.getpixel((50, top + 70)) == (0, 0, 255)


def test_html_assets_load_through_the_asset_store():
    document = pdf.render_html('<img src="asset:logo.png" style="width:40px;height:40px">', "",
                               width=100, height=100, fetch=None,
                               assets={"logo.png": png_bytes((0, 255, 0))}.__getitem__)
    assert pdf.rasterize_pdf(document).getpixel((20, 20)) == (0, 255, 0)


def test_html_overflow_gives_one_page():
    document = pdf.render_html("<p>x</p>" * 200, "", width=200, height=100, fetch=None)
    assert len(page_sizes(document)) == 1


REFUSED = {
    "file image": ('<img src="file:///etc/passwd">', "", "file:///etc/passwd"),
    "file @import": ("<p>x</p>", "@import url('file:///etc/passwd');", "file:///etc/passwd"),
    "file background": ('<p style="background: url(file:///etc/hostname)">x</p>', "",
                        "file:///etc/hostname"),
    "file in svg": ('<svg width="10" height="10"><image href="file:///etc/passwd" width="10" '
                    'height="10"/></svg>', "", "file:///etc/passwd"),
    "other scheme": ('<img src="ftp://example.com/a.png">', "", "ftp://example.com/a.png"),
    "http without fetcher": ('<img src="https://example.com/a.png">', "",
                             "https://example.com/a.png"),
    "asset without store": ('<img src="asset:logo.png">', "", "asset:logo.png"),
    "undecodable data": ('<img src="data:image/png;base64,AAAA">', "", "data:image/png"),
}


@pytest.mark.parametrize("name", REFUSED)
def test_html_resources_that_must_not_load_raise_naming_the_url(name):
    html, css, url = REFUSED[name]

    def fetch(requested: str) -> bytes:
        raise AssertionError(f"no request expected, got {requested}")

    with pytest.raises(ResourceError, match=re.escape(url)):
        pdf.render_html(html, css, width=100, height=100,
                        fetch=None if "without fetcher" in name else fetch)


def test_html_fetch_failure_names_url_and_reason():
    def fetch(url: str) -> bytes:
        raise ConnectionError("address 10.0.0.1 is private")

    with pytest.raises(ResourceError, match=r"https://internal\.example/x\.png.*private"):
        pdf.render_html('<img src="https://internal.example/x.png">', "", width=100,
                        height=100, fetch=fetch)


def test_scene_fonts_are_the_only_local_files_served():
    run = make_run("Local", LATIN, 30, 0, 40)
    document = pdf.paint_pdf(white_scene(text_item((run,), Box(0, 0, 300, 60))))
    assert pdf.pdf_text(document) == ["Local"]
    with pytest.raises(ResourceError, match="local files are not allowed"):
        pdf.render_html(f"<style>@font-face {{ font-family: x; src: url('file://{LATIN.path}') }}"
                        "</style><p style='font-family: x'>x</p>", "", width=100, height=100,
                        fetch=None)


def test_collection_index_picks_the_regional_face():
    """直 and 骨 are drawn differently in Japanese and Simplified Chinese."""
    run_sc = make_run("直骨角", CJK_SC, 80, 10, 100)
    got = np.asarray(painted(text_item((run_sc,), Box(0, 0, 400, 150))).convert("L"), float)
    want = {face.index: np.asarray(pillow_text(text_item((make_run("直骨角", face, 80, 10, 100),),
                                                         Box(0, 0, 400, 150)), (800, 200))
                                   .convert("L"), float) for face in (CJK_JP, CJK_SC)}
    assert np.abs(got - want[CJK_SC.index]).mean() < np.abs(got - want[CJK_JP.index]).mean() / 2
