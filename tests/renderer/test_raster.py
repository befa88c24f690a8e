"""The Pillow painter, checked by pixels: golden pictures of small purpose-built templates and
of the demo templates (compared with a tolerance), the colours where they must be, and caches
that never let one render's picture leak into another's."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import (
    assert_image_close,
    close_to,
    color_at,
    golden,
    image_differences,
    open_image,
    png_data_uri,
    rgba,
)
from PIL import Image
from pyzbar import pyzbar

from renderer import TemplateError, load_template, render

WHITE, RED, BLUE = (255, 255, 255, 255), (255, 0, 0, 255), (0, 0, 255, 255)
BG = "#f1f5f9"
BG_RGBA = (0xF1, 0xF5, 0xF9, 255)


def scene(*layers, width=160, height=100, background=BG, **top):
    return {"width": width, "height": height, "background": background, "layers": list(layers),
            **top}


def rect(name, x, y, width, height, **props):
    return {"name": name, "type": "rect", "x": x, "y": y, "width": width, "height": height,
            **props}


def paint(template, variables=None, **options) -> Image.Image:
    return open_image(render(template, variables, **options).data)


# ------------------------------------------------------------------ shapes


RECTS = scene(
    rect("rounded", 10, 10, 80, 60, fill="#e11d48", radius=20, stroke="#0f172a",
         stroke_width=4),
    rect("outline", 100, 10, 50, 40, stroke="#2563eb", stroke_width=3),
    rect("pill", 100, 60, 50, 30, fill="#16a34a", radius=100),
)


def test_rect_with_radius_and_stroke():
    image = paint(RECTS)
    assert_image_close(image, golden("rect_radius_stroke"))
    assert color_at(image, (50, 40)) == (0xE1, 0x1D, 0x48, 255)  # fill
    assert color_at(image, (11, 40)) == (0x0F, 0x17, 0x2A, 255)  # stroke, inside the box
    assert color_at(image, (8, 40)) == BG_RGBA  # never outside it
    assert color_at(image, (12, 12)) == BG_RGBA  # the rounded corner is cut away
    assert color_at(image, (125, 30)) == BG_RGBA  # a stroke-only rect stays hollow
    assert color_at(image, (101, 30)) == (0x25, 0x63, 0xEB, 255)
    assert color_at(image, (101, 62)) == BG_RGBA  # radius larger than the box: a pill
    assert color_at(image, (125, 75)) == (0x16, 0xA3, 0x4A, 255)


def test_ellipse():
    template = scene(
        {"name": "disc", "type": "ellipse", "x": 10, "y": 10, "width": 140, "height": 80,
         "fill": "linear-gradient(90deg, #f59e0b, #7c3aed)", "stroke": "#0f172a",
         "stroke_width": 3},
    )
    image = paint(template)
    assert_image_close(image, golden("ellipse"))
    assert color_at(image, (14, 14)) == BG_RGBA  # box corners are outside the ellipse
    assert color_at(image, (146, 86)) == BG_RGBA
    assert color_at(image, (11, 50)) == (0x0F, 0x17, 0x2A, 255)  # stroke at the left vertex
    start, end = np.array([0xF5, 0x9E, 0x0B]), np.array([0x7C, 0x3A, 0xED])
    for x in (20, 80, 140):  # the gradient spans the box, left to right
        t = (x + 0.5 - 10) / 140
        expected = tuple(np.rint(start + (end - start) * t).astype(int)) + (255,)
        assert close_to(color_at(image, (x, 50)), expected, 2), x


GRADIENTS = scene(
    rect("right", 0, 0, 60, 60, fill="linear-gradient(90deg, #ff0000, #0000ff)"),
    rect("down", 70, 0, 60, 60, fill="linear-gradient(180deg, #ff0000, #0000ff)"),
    rect("diagonal", 140, 0, 60, 60, fill="linear-gradient(135deg, #ff0000, #0000ff)"),
    rect("stops", 0, 70, 200, 20,
         fill="linear-gradient(to right, #000000, #ffffff 25%, #000000 50%, #ffffff)"),
    width=200, height=90,
)
MID = (128, 0, 128, 255)


def test_gradients():
    image = paint(GRADIENTS)
    assert_image_close(image, golden("gradients"))


@pytest.mark.parametrize(("points", "colors"), [
    # 90deg runs left to right
    ([(0, 0), (0, 59), (59, 0), (59, 59), (30, 30)], [RED, RED, BLUE, BLUE, MID]),
    # 180deg runs top to bottom
    ([(70, 0), (129, 0), (70, 59), (129, 59)], [RED, RED, BLUE, BLUE]),
    # 135deg runs from the top-left corner to the bottom-right one
    ([(140, 0), (199, 59), (199, 0), (140, 59), (170, 30)], [RED, BLUE, MID, MID, MID]),
    # explicit stops
    ([(0, 80), (50, 80), (100, 80), (199, 80)], [(0, 0, 0, 255), WHITE, (0, 0, 0, 255), WHITE]),
])
def test_gradient_colours(points, colors):
    image = paint(GRADIENTS)
    for point, color in zip(points, colors, strict=True):
        assert close_to(color_at(image, point), color, 8), (point, color_at(image, point))


def test_gradient_keywords_match_angles():
    by_angle = paint(scene(rect("g", 0, 0, 160, 100, fill="linear-gradient(90deg, red, blue)")))
    by_word = paint(scene(rect("g", 0, 0, 160, 100, fill="linear-gradient(to right, red, blue)")))
    assert np.array_equal(rgba(by_angle), rgba(by_word))


def test_gradient_to_transparent_fades_without_darkening():
    # CSS interpolates gradients in premultiplied colour: red fading out stays red, it does
    # not pass through dark red (the PDF of the same scene is drawn by CSS rules)
    fade = scene(rect("g", 0, 0, 160, 100, fill="linear-gradient(90deg, #ff0000, transparent)"),
                 background="#ffffff")
    assert close_to(color_at(paint(fade), (80, 50)), (255, 128, 128, 255), 4)
    r, g, b, a = color_at(paint(fade | {"background": None}, transparent=True), (80, 50))
    assert (r, g, b) == (255, 0, 0) and abs(a - 128) <= 2


def test_gradient_background():
    image = paint(scene(background="linear-gradient(180deg, #000000, #ffffff)"))
    assert close_to(color_at(image, (80, 0)), (0, 0, 0, 255), 4)
    assert close_to(color_at(image, (80, 99)), WHITE, 4)


def test_opacity_and_rotation():
    template = scene(
        rect("under", 20, 20, 60, 60, fill="#0000ff"),
        rect("veil", 50, 10, 60, 80, fill="#ff0000", opacity=0.5),
        rect("bar", 100, 40, 60, 20, fill="#16a34a", rotation=90),
        rect("tilted", 20, 70, 40, 20, fill="#0f172a", rotation=30, opacity=0.8),
    )
    image = paint(template)
    assert_image_close(image, golden("opacity_rotation"))
    bg = np.array(BG_RGBA[:3])
    over_bg = tuple(np.rint(bg * 0.5 + np.array([255, 0, 0]) * 0.5).astype(int)) + (255,)
    assert close_to(color_at(image, (100, 15)), over_bg, 2)
    assert close_to(color_at(image, (60, 50)), (128, 0, 127, 255), 2)  # red veil over blue
    # the 60x20 bar turned a quarter about its centre (130, 50) stands upright: 20x60
    assert close_to(color_at(image, (130, 25)), (0x16, 0xA3, 0x4A, 255), 4)
    assert close_to(color_at(image, (130, 75)), (0x16, 0xA3, 0x4A, 255), 4)
    assert color_at(image, (115, 50)) == BG_RGBA
    assert color_at(image, (155, 50)) == BG_RGBA


def test_rotated_shapes_have_smooth_edges():
    # unrotated shapes are anti-aliased; a rotated one must not turn jagged (and the PDF of the
    # same scene is smooth): its edge pixels are partly covered, not all-or-nothing
    template = scene(rect("tilted", 50, 20, 60, 60, fill="#ff0000", rotation=30),
                     background=None)
    alpha = rgba(paint(template, transparent=True))[..., 3]
    assert ((alpha > 0) & (alpha < 255)).sum() > 100


def test_paint_order_is_list_order():
    first, second = rect("a", 10, 10, 60, 60, fill="#ff0000"), rect("b", 40, 40, 60, 60,
                                                                     fill="#0000ff")
    assert color_at(paint(scene(first, second)), (55, 55)) == BLUE
    assert color_at(paint(scene(second, first)), (55, 55)) == RED
    assert color_at(paint(scene(first, second)), (20, 20)) == RED


def test_shapes_hanging_off_the_canvas():
    template = scene(rect("left", -30, -30, 60, 60, fill="#ff0000", radius=10),
                     rect("right", 130, 70, 60, 60, fill="#0000ff", rotation=45),
                     rect("gone", 500, 500, 10, 10, fill="#000000"))
    image = paint(template)
    assert color_at(image, (0, 0)) == RED and color_at(image, (159, 99)) == BLUE
    assert color_at(image, (80, 50)) == BG_RGBA


# ------------------------------------------------------------------ QR codes


@pytest.mark.parametrize(("data", "options"), [
    ("https://example.com/p/42?utm_source=qr&id=7", {}),
    ("WIFI:T:WPA;S:Pixelmerge;P:s3cret;;", {"color": "#1e3a8a", "background": "#fef3c7",
                                             "error": "h", "margin": 4}),
])
@pytest.mark.parametrize("scale", [1, 2])
def test_qr_decodes_to_its_data(data, options, scale):
    template = scene({"name": "link", "type": "qr", "x": 20, "y": 10, "width": 150,
                      "height": 150, "data": "{{ url }}", **options}, width=190, height=170,
                     background="#ffffff")
    image = paint(template, {"url": data}, scale=scale)
    decoded = pyzbar.decode(image.convert("L"))
    assert [symbol.data.decode() for symbol in decoded] == [data]
    assert decoded[0].type == "QRCODE"


def test_qr_with_empty_data_is_skipped_with_a_warning():
    template = scene({"name": "link", "type": "qr", "x": 0, "y": 0, "width": 100,
                      "height": 100, "data": "{{ url }}"})
    out = render(template, {"url": ""})
    assert any("layers[0]" in w and "link" in w for w in out.warnings)
    assert open_image(out.data).convert("RGB").getcolors() == [(160 * 100, BG_RGBA[:3])]


# ------------------------------------------------------------------ text


TEXT = scene(
    {"name": "sale", "type": "text", "x": 10, "y": 10, "width": 280, "height": 80,
     "text": "SALE -40%", "weight": 700, "size": 56, "color": "#fde047", "stroke": "#7f1d1d",
     "stroke_width": 4, "shadow": {"x": 6, "y": 6, "blur": 0, "color": "#1d4ed8"},
     "align": "center", "valign": "middle"},
    width=300, height=100, background="#ffffff",
)


def test_text_with_stroke_and_shadow():
    image = paint(TEXT)
    assert_image_close(image, golden("text_stroke_shadow"), max_mean=1.5,
                       max_pixel_fraction=0.01)
    colors = {color for _, color in image.convert("RGB").getcolors(100_000)}
    assert (0xFD, 0xE0, 0x47) in colors and (0x7F, 0x1D, 0x1D) in colors
    assert (0x1D, 0x4E, 0xD8) in colors


def test_shadow_lies_down_and_right_of_the_text():
    layer = TEXT["layers"][0] | {"size": 32, "align": "left", "valign": "top"}
    plain = rgba(paint(TEXT | {"layers": [layer | {"shadow": None}]}))
    shadowed = rgba(paint(TEXT | {"layers": [layer]}))
    changed = np.argwhere(np.abs(shadowed - plain).max(axis=-1) > 0)
    painted = np.argwhere(np.abs(plain - 255).max(axis=-1) > 0)
    assert changed.size, "the shadow changed nothing"
    assert changed[:, 0].max() > painted[:, 0].max()  # lower
    assert changed[:, 1].max() > painted[:, 1].max()  # further right


def test_text_stays_in_its_box():
    template = scene({"name": "t", "type": "text", "x": 40, "y": 30, "width": 80, "height": 40,
                      "text": "A long line that cannot possibly fit in this little box",
                      "size": 40, "min_size": 30, "fit": "truncate", "color": "#000000"},
                     background="#ffffff")
    pixels = rgba(paint(template))
    inked = np.argwhere(pixels[..., :3].min(axis=-1) < 250)
    assert inked.size
    assert inked[:, 0].min() >= 30 and inked[:, 0].max() < 70
    assert inked[:, 1].min() >= 40 and inked[:, 1].max() < 120


# ------------------------------------------------------------------ the demo templates


def test_demo_card(load_demo, demo_assets):
    tpl = load_demo("card")
    out = render(tpl, tpl.samples(), assets=demo_assets)
    assert (out.width, out.height, out.warnings) == (1200, 630, [])
    image = open_image(out.data)
    # stored at half size: enough to see every layer, a quarter of the bytes
    assert_image_close(image.reduce(2), golden("demo_card"), max_mean=1.5,
                       max_pixel_fraction=0.01)
    assert close_to(color_at(image, (740, 490)), (0xE1, 0x1D, 0x48, 255), 4)  # the sale badge


def test_demo_world(load_demo):
    tpl = load_demo("world")
    out = render(tpl, tpl.samples())
    assert out.warnings == []
    assert_image_close(open_image(out.data).reduce(2), golden("demo_world"), max_mean=1.5,
                       max_pixel_fraction=0.01)


def test_demo_world_has_colour_emoji(load_demo):
    tpl = load_demo("world")
    image = open_image(render(tpl, tpl.samples()).data).convert("RGB")
    strip = np.asarray(image.crop((60, 510, 1140, 600)), dtype=np.int16)
    saturation = strip.max(axis=-1) - strip.min(axis=-1)
    assert (saturation > 100).sum() > 2000  # text colour is black: only emoji bring colour


def test_golden_comparison_catches_a_changed_title(load_demo, demo_assets, tmp_path):
    tpl = load_demo("card")
    changed = render(tpl, tpl.samples() | {"title": "Winter is coming, and so are the coats"},
                     assets=demo_assets)
    reference = open_image(render(tpl, tpl.samples(), assets=demo_assets).data)
    assert image_differences(open_image(changed.data), reference, max_mean=1.5,
                             max_pixel_fraction=0.01, threshold=32)
    with pytest.raises(pytest.fail.Exception, match="actual and diff saved"):
        assert_image_close(open_image(changed.data), reference, save_to=tmp_path)
    assert (tmp_path / "image.diff.png").exists()


# ------------------------------------------------------------------ output behaviour


def test_transparent_png_keeps_alpha_where_nothing_is_painted():
    template = scene(rect("box", 40, 20, 40, 40, fill="#ff0000"),
                     rect("veil", 100, 20, 40, 40, fill="#0000ff", opacity=0.5),
                     background=None)
    image = paint(template, transparent=True)
    assert image.mode == "RGBA"
    assert color_at(image, (5, 5))[3] == 0
    assert color_at(image, (60, 40)) == RED
    assert color_at(image, (120, 40))[3] in (127, 128)


def test_transparent_png_with_a_translucent_background():
    image = paint(scene(background="rgba(0, 0, 255, 0.5)"), transparent=True)
    assert close_to(color_at(image, (5, 5)), (0, 0, 255, 128), 1)


@pytest.mark.parametrize(("fmt", "transparent"), [("png", False), ("jpeg", False),
                                                 ("jpeg", True)])
def test_opaque_output(fmt, transparent):
    template = scene(rect("box", 40, 20, 40, 40, fill="#ff0000"), background=None)
    image = paint(template, format=fmt, transparent=transparent)
    assert image.mode == "RGB"
    assert close_to(color_at(image, (5, 5)), WHITE, 3)  # nothing painted: white
    assert close_to(color_at(image, (60, 40)), RED, 12)


def test_translucent_background_on_opaque_output_lies_on_white():
    image = paint(scene(background="rgba(0, 0, 255, 0.5)"))
    assert close_to(color_at(image, (5, 5)), (127, 127, 255, 255), 1)


BADGE = scene(rect("badge", 20, 20, 60, 60, fill="#e11d48", visible="{{ on_sale }}"),
              variables={"on_sale": {"type": "bool"}}, background="#ffffff")


@pytest.mark.parametrize(("value", "shown"), [
    ("FALSE", False), ("false", False), ("no", False), ("0", False), ("", False),
    ("TRUE", True), ("yes", True), ("1", True), (True, True), (False, False),
])
def test_visible_follows_a_spreadsheet_boolean(value, shown):
    image = paint(BADGE, {"on_sale": value})
    assert (color_at(image, (50, 50)) == (0xE1, 0x1D, 0x48, 255)) is shown


def test_rows_from_the_demo_csv_hide_the_badge(load_demo, demo_assets, demo_dir):
    import csv

    tpl = load_demo("card")
    with open(demo_dir / "rows.csv", newline="") as handle:
        rows = {row["sku"]: row for row in csv.DictReader(handle)}
    badge = (740, 490)
    on = paint(tpl, rows["A-100"], assets=demo_assets)
    off = paint(tpl, rows["A-102"], assets=demo_assets)
    assert close_to(color_at(on, badge), (0xE1, 0x1D, 0x48, 255), 4)
    assert not close_to(color_at(off, badge), (0xE1, 0x1D, 0x48, 255), 40)


MOVING = scene(rect("box", 10, 10, 30, 30, fill="#ff0000"),
               rect("static", 60, 10, 20, 20, fill="#0000ff"),
               sizes={"tall": {"width": 100, "height": 200, "background": "#000000",
                               "layers": {"box": {"x": 50, "y": 150, "width": 40}}}})


def test_sizes_pick_the_variant():
    out = render(MOVING, size="tall")
    assert (out.width, out.height) == (100, 200)
    image = open_image(out.data)
    assert image.size == (100, 200)
    assert color_at(image, (85, 160)) == RED  # moved and widened
    assert color_at(image, (20, 20)) == (0, 0, 0, 255)  # no longer here; variant background
    assert color_at(image, (70, 20)) == BLUE  # layers without overrides stay put
    assert paint(MOVING).size == (160, 100)


def test_demo_card_story_size(load_demo, demo_assets):
    tpl = load_demo("card")
    out = render(tpl, tpl.samples(), size="story", assets=demo_assets)
    assert (out.width, out.height) == (1080, 1920)
    image = open_image(out.data)
    assert close_to(color_at(image, (200, 1660)), (0xE1, 0x1D, 0x48, 255), 4)  # badge moved


def test_unknown_size():
    with pytest.raises(TemplateError) as info:
        render(MOVING, size="huge")
    assert info.value.code == "unknown_size" and "tall" in info.value.message


SCALED = scene(
    rect("rounded", 10, 10, 70, 50, fill="#e11d48", radius=12, stroke="#0f172a",
         stroke_width=3),
    {"name": "disc", "type": "ellipse", "x": 90, "y": 10, "width": 60, "height": 60,
     "fill": "linear-gradient(135deg, #f59e0b, #7c3aed)"},
    {"name": "word", "type": "text", "x": 10, "y": 66, "width": 140, "height": 30,
     "text": "Scale me", "size": 22, "weight": 700, "color": "#0f172a"},
    {"name": "pic", "type": "image", "x": 130, "y": 70, "width": 24, "height": 24,
     "src": png_data_uri(Image.new("RGB", (4, 4), "#16a34a")), "mask": "circle"},
)


def test_scale_two_doubles_the_picture():
    out = render(SCALED, scale=2)
    assert (out.width, out.height) == (320, 200)
    double = open_image(out.data)
    single = open_image(render(SCALED).data)
    upscaled = single.resize(double.size, Image.Resampling.BICUBIC)
    # edges are sharper at scale 2 than in an upscaled picture: that, and only that, differs
    assert_image_close(double, upscaled, max_mean=4, max_pixel_fraction=0.06, threshold=48)
    assert image_differences(double, single.transpose(Image.Transpose.FLIP_LEFT_RIGHT).resize(
        double.size), max_mean=4, max_pixel_fraction=0.06, threshold=48)


# ------------------------------------------------------------------ caches


LAYERED = scene(
    rect("backdrop", 0, 0, 160, 100, fill="linear-gradient(135deg, #0f172a, #7c3aed)"),
    rect("card", 10, 10, 140, 50, fill="#ffffff", radius=8),
    {"name": "title", "type": "text", "x": 16, "y": 14, "width": 128, "height": 40,
     "text": "{{ title }}", "size": 24, "color": "#0f172a"},
    {"name": "tag", "type": "text", "x": 10, "y": 66, "width": 90, "height": 28,
     "text": "{{ tag }}", "size": 20, "color": "#fde047"},
)


def test_caches_do_not_leak_between_renders():
    a = rgba(paint(LAYERED, {"title": "Alpha", "tag": "new"}))
    b = rgba(paint(LAYERED, {"title": "Bravo", "tag": "sale"}))
    again = rgba(paint(LAYERED, {"title": "Alpha", "tag": "new"}))
    assert np.array_equal(a, again)
    assert not np.array_equal(a, b)


def test_changing_the_last_layer_changes_only_its_box():
    first = rgba(paint(LAYERED, {"title": "Alpha", "tag": "new"}))
    second = rgba(paint(LAYERED, {"title": "Alpha", "tag": "sold out"}))
    rows, cols = np.nonzero(np.abs(first - second).max(axis=-1))
    assert rows.size, "the tag did not change the picture"
    assert rows.min() >= 66 and rows.max() < 66 + 28
    assert cols.min() >= 10 and cols.max() < 10 + 90
    assert np.array_equal(rgba(paint(LAYERED, {"title": "Alpha", "tag": "new"})), first)


def test_a_changing_first_layer_starts_from_a_clean_cached_background():
    """The gradient under a first layer that changes is painted once and then copied: no
    render's text may stay on it for the next."""
    template = scene({"name": "t", "type": "text", "x": 10, "y": 10, "width": 140, "height": 40,
                      "text": "{{ t }}", "size": 28, "color": "#ffffff"},
                     background="linear-gradient(90deg, #000000, #0000ff)")
    first = rgba(paint(template, {"t": "one"}))
    second = rgba(paint(template, {"t": "two"}))
    assert np.array_equal(rgba(paint(template, {"t": "one"})), first)
    assert not np.array_equal(first[10:50], second[10:50])
    assert np.array_equal(first[60:], second[60:])
    assert close_to(tuple(first[80, 2]), (0, 0, 2, 255), 3)
    assert close_to(tuple(first[80, 157]), (0, 0, 253, 255), 3)


def _forget_canvases():
    from renderer import raster

    raster._canvases.clear()
    raster._last_items.clear()


def test_a_batch_changing_a_middle_layer_paints_what_a_first_render_paints():
    """Renders that change the same middle layer (a batch changing titles) start from the
    canvas kept beneath it; each picture is the one a process rendering it first paints. A
    template of the same size rendered in between does not mix in."""
    base = [rect("bottom", 0, 0, 160, 40, fill="#ff0000"),
            {"name": "t", "type": "text", "x": 0, "y": 40, "width": 160, "height": 30,
             "text": "{{ t }}", "size": 20},
            {"name": "p", "type": "text", "x": 0, "y": 70, "width": 160, "height": 30,
             "text": "{{ p }}", "size": 20}]
    template = scene(*base)
    other = scene(rect("bottom", 0, 0, 160, 40, fill="#0000ff"), *base[1:])
    rows = [{"t": f"title {i}", "p": "same" if i % 3 else f"price {i}"} for i in range(6)]
    painted = []
    for row in rows:
        painted.append(rgba(paint(template, row)))
        paint(other, row)
    for row, picture in zip(rows, painted, strict=True):
        _forget_canvases()
        assert np.array_equal(rgba(paint(template, row)), picture), row
    assert tuple(painted[-1][5, 5]) == RED


def test_transparent_and_opaque_renders_do_not_share_canvases():
    template = scene(rect("box", 40, 20, 40, 40, fill="#ff0000"),
                     {"name": "t", "type": "text", "x": 0, "y": 70, "width": 160, "height": 30,
                      "text": "{{ t }}", "size": 20}, background=None)
    clear = paint(template, {"t": "x"}, transparent=True)
    opaque = paint(template, {"t": "x"})
    clear_again = paint(template, {"t": "x"}, transparent=True)
    assert color_at(clear, (5, 5))[3] == 0 and color_at(clear_again, (5, 5))[3] == 0
    assert opaque.mode == "RGB" and color_at(opaque, (5, 5)) == WHITE
    assert np.array_equal(rgba(clear), rgba(clear_again))


def test_same_layers_on_another_background():
    layers = [rect("box", 40, 20, 40, 40, fill="#ff0000"),
              {"name": "t", "type": "text", "x": 0, "y": 70, "width": 160, "height": 30,
               "text": "{{ t }}", "size": 20}]
    dark = paint(scene(*layers, background="#000000"), {"t": "x"})
    light = paint(scene(*layers, background="#ffffff"), {"t": "x"})
    assert color_at(dark, (5, 5)) == (0, 0, 0, 255)
    assert color_at(light, (5, 5)) == WHITE


def test_a_template_object_renders_like_its_json():
    tpl = load_template(RECTS)
    assert np.array_equal(rgba(paint(tpl)), rgba(paint(RECTS)))
