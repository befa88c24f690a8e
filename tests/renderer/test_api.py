"""The renderer's public face: ``render``, ``render_key`` and ``render_scene``, checked the way
a caller would check them: the bytes decode to the promised format and size, keys follow SPEC 5,
expressions, PDFs, animated GIFs and HTML templates show the right text."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_raw
import pytest
from helpers import FakeFetch, open_image, png_bytes, solid
from PIL import Image, ImageSequence

from renderer import (
    ExpressionError,
    RendererError,
    ResourceError,
    TemplateError,
    load_template,
    render,
    render_key,
    render_scene,
)
from renderer.pdf import merge_pdfs, pdf_text, rasterize_pdf
from renderer.scene import TextItem

SMALL = {
    "kind": "layered", "name": "Small", "width": 160, "height": 90, "background": "#1e3a8a",
    "variables": {"price": {"type": "number", "sample": 49},
                  "title": {"type": "text", "sample": "Hi"}},
    "layers": [
        {"name": "title", "type": "text", "x": 8, "y": 8, "width": 144, "height": 36,
         "text": "{{ title }}", "size": 24, "color": "#ffffff"},
        {"name": "price", "type": "text", "x": 8, "y": 48, "width": 144, "height": 36,
         "text": "{{ price * 0.9 | currency }}", "size": 24, "color": "#ffffff"},
    ],
    "sizes": {"square": {"width": 90, "height": 90}},
}
VARS = {"title": "Hello", "price": "49"}


def small(**changes) -> dict:
    return json.loads(json.dumps({**SMALL, **changes}))


def mean_diff(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size
    return float(np.abs(np.asarray(a.convert("RGB"), dtype=np.int16)
                        - np.asarray(b.convert("RGB"), dtype=np.int16)).mean())


def text_items(scene) -> list[TextItem]:
    return [item for item in scene.items if isinstance(item, TextItem)]


def scene_lines(scene) -> list[str]:
    return [line for item in text_items(scene) for line in item.lines]


def pdf_page_size(data: bytes, page: int = 0) -> tuple[float, float]:
    document = pdfium.PdfDocument(data)
    try:
        return tuple(document[page].get_size())
    finally:
        document.close()


def pdf_lines_with_sizes(data: bytes) -> list[tuple[str, float]]:
    """Each text line of page 1 with the font size of its characters (all must agree)."""
    document = pdfium.PdfDocument(data)
    try:
        textpage = document[0].get_textpage()
        text = textpage.get_text_range()
        lines: list[tuple[str, set[float]]] = [("", set())]
        for index, char in enumerate(text):
            if char in "\r\n":
                if lines[-1][0]:
                    lines.append(("", set()))
                continue
            size = round(pdfium_raw.FPDFText_GetFontSize(textpage.raw, index), 2)
            line, sizes = lines[-1]
            lines[-1] = (line + char, sizes | ({size} if not char.isspace() else set()))
        textpage.close()
    finally:
        document.close()
    result = []
    for line, sizes in lines:
        if line:
            assert len(sizes) == 1, f"{line!r} mixes font sizes {sizes}"
            result.append((line, sizes.pop()))
    return result


# --- formats and options ------------------------------------------------------------------------

RASTER = {  # format -> (mime, extension, what Pillow calls it, magic bytes and where)
    "png": ("image/png", "png", "PNG", (0, b"\x89PNG\r\n\x1a\n")),
    "jpeg": ("image/jpeg", "jpg", "JPEG", (0, b"\xff\xd8\xff")),
    "webp": ("image/webp", "webp", "WEBP", (8, b"WEBP")),
    "avif": ("image/avif", "avif", "AVIF", (4, b"ftypavif")),
    "gif": ("image/gif", "gif", "GIF", (0, b"GIF8")),
}


@pytest.mark.parametrize("fmt", RASTER)
@pytest.mark.parametrize("scale", [1, 2])
def test_raster_formats_decode_to_the_promised_size(fmt, scale):
    mime, extension, pil_name, (offset, magic) = RASTER[fmt]
    out = render(SMALL, VARS, format=fmt, scale=scale)
    assert out.format == fmt and out.mime == mime and out.extension == extension
    assert out.data[offset:offset + len(magic)] == magic
    assert (out.width, out.height) == (160 * scale, 90 * scale)
    image = open_image(out.data)
    assert image.format == pil_name
    assert image.size == (160 * scale, 90 * scale)
    assert out.warnings == []


def test_pdf_format():
    out = render(SMALL, VARS, format="pdf")
    assert (out.format, out.mime, out.extension) == ("pdf", "application/pdf", "pdf")
    assert out.data.startswith(b"%PDF-")
    assert (out.width, out.height) == (160, 90)
    assert pdf_page_size(out.data) == pytest.approx((160 * 0.75, 90 * 0.75))
    assert pdf_text(out.data) == ["Hello\n$44.10"]


@pytest.mark.parametrize(("alias", "canonical"), [
    ("jpg", "jpeg"), ("JPG", "jpeg"), ("JPEG", "jpeg"), ("image/png", "png"), (".webp", "webp"),
    (" Png ", "png"), ("image/jpeg", "jpeg"),
])
def test_format_aliases(alias, canonical):
    out = render(SMALL, VARS, format=alias)
    assert out.format == canonical
    assert open_image(out.data).format == RASTER[canonical][2]
    assert out.key == render_key(SMALL, VARS, format=canonical)


def test_an_unknown_format_is_refused_clearly():
    with pytest.raises(RendererError) as caught:
        render(SMALL, VARS, format="bmp")
    message = str(caught.value)
    assert "'bmp'" in message
    assert all(name in message for name in ("png", "jpeg", "webp", "avif", "gif", "pdf"))
    assert caught.value.code == "unsupported_format"


@pytest.mark.parametrize(("option", "value"), [
    ("scale", 0), ("scale", 0.5), ("scale", 5), ("scale", "2"), ("scale", True),
    ("quality", 0), ("quality", 101), ("quality", 50.5), ("quality", "90"), ("quality", True),
])
def test_invalid_options_name_the_option(option, value):
    with pytest.raises(TemplateError) as caught:
        render(SMALL, VARS, **{option: value})
    assert caught.value.path == option
    assert repr(value) in str(caught.value)
    with pytest.raises(TemplateError):
        render_key(SMALL, VARS, **{option: value})


def test_quality_changes_a_jpeg():
    low = render(SMALL, VARS, format="jpeg", quality=5)
    high = render(SMALL, VARS, format="jpeg", quality=95)
    assert len(low.data) < len(high.data)
    assert low.key != high.key


@pytest.mark.parametrize("fmt", ["png", "webp", "avif"])
def test_transparent_output_keeps_alpha(fmt):
    template = small(background=None)
    image = open_image(render(template, VARS, format=fmt, transparent=True).data)
    assert image.mode == "RGBA"
    assert image.getpixel((0, 0))[3] == 0  # nothing drawn there
    opaque = open_image(render(template, VARS, format=fmt).data).convert("RGBA")
    assert opaque.getpixel((0, 0)) == (255, 255, 255, 255)  # flattened onto white


def test_a_named_size():
    out = render(SMALL, VARS, size="square")
    assert (out.width, out.height) == (90, 90) == open_image(out.data).size
    with pytest.raises(TemplateError, match="story"):
        render(SMALL, VARS, size="story")


# --- render keys ----------------------------------------------------------------------------------

def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def expected_key(template: dict, variables: dict, *, format="png", size=None, scale=1,
                 quality=None, transparent=False, template_id=None, version=None) -> str:
    """SPEC 5, recomputed from what ``renderer/key.py`` documents: outside the web app the
    template's canonical digest stands in for its id and version."""
    digest = hashlib.sha256(canonical(template).encode()).hexdigest()
    payload = {
        "template": digest if template_id is None else template_id,
        "version": digest if version is None else version,
        "variables": variables, "format": format, "size": size,
        "options": {"scale": scale, "quality": quality, "transparent": transparent},
    }
    return hashlib.sha256(canonical(payload).encode()).hexdigest()


def test_the_same_request_gives_the_same_key():
    first = render_key(SMALL, VARS)
    assert first == render_key(SMALL, dict(VARS))
    assert first == render_key(load_template(SMALL), VARS)
    assert render(SMALL, VARS).key == first
    assert len(first) == 64 and int(first, 16) >= 0


def test_the_key_is_the_sha256_of_the_canonical_request():
    assert render_key(SMALL, VARS) == expected_key(SMALL, {"title": "Hello", "price": 49})
    # a declared variable that is not given (and has no default) is left out
    assert render_key(SMALL, {"title": "Été"}, format="jpg", size="square", scale=2,
                      quality=80) == expected_key(SMALL, {"title": "Été"}, format="jpeg",
                                                  size="square", scale=2, quality=80)
    assert render_key(SMALL, VARS, format="webp", transparent=True, template_id=7,
                      version=3) == expected_key(SMALL, {"title": "Hello", "price": 49},
                                                 format="webp", transparent=True,
                                                 template_id=7, version=3)
    assert render_key(SMALL, VARS, scale=1.5) == \
        expected_key(SMALL, {"title": "Hello", "price": 49}, scale=1.5)


@pytest.mark.parametrize("change", [
    {"variables": {"title": "Bye", "price": "49"}},
    {"variables": {"title": "Hello", "price": "48"}},
    {"format": "jpeg"}, {"format": "pdf"}, {"size": "square"}, {"scale": 2}, {"quality": 50},
    {"transparent": True}, {"template_id": "tpl_1"}, {"version": 2},
])
def test_a_different_request_gives_a_different_key(change):
    change = dict(change)
    variables = change.pop("variables", VARS)
    assert render_key(SMALL, variables, **change) != render_key(SMALL, VARS)


def test_a_different_template_gives_a_different_key():
    other = small(background="#000000")
    assert render_key(other, VARS) != render_key(SMALL, VARS)


def test_variables_the_template_does_not_use_do_not_change_the_key():
    base = render_key(SMALL, VARS)
    assert render_key(SMALL, {**VARS, "sku": "A-100", "notes": "whole sheet row"}) == base
    assert render(SMALL, {**VARS, "unused": 1}).key == base


def test_text_numbers_and_numbers_give_the_same_key_for_a_declared_number():
    keys = {render_key(SMALL, {"title": "Hello", "price": value})
            for value in ("49", 49, 49.0, " 49 ", "49.0")}
    assert len(keys) == 1


def test_transparency_only_counts_where_the_format_has_alpha():
    assert render_key(SMALL, VARS, format="jpeg", transparent=True) == \
        render_key(SMALL, VARS, format="jpeg")
    assert render_key(SMALL, VARS, format="png", transparent=True) != \
        render_key(SMALL, VARS, format="png")


# --- expressions through render -----------------------------------------------------------------

def test_a_filter_applies_to_the_whole_expression(load_demo, demo_assets):
    card = load_demo("card")
    variables = {**card.samples(), "price": "49"}
    scene = render_scene(card, variables, assets=demo_assets)
    price = next(item for item in text_items(scene) if item.common.name == "price")
    assert price.lines == ("$44.10",)
    pdf = render(card, variables, format="pdf", assets=demo_assets)
    assert "$44.10" in pdf_text(pdf.data)[0].split("\n")
    assert pdf.warnings == []


def test_missing_variables_are_warned_about_and_render_empty():
    template = small(variables={})
    out = render(template, {}, format="pdf")
    assert len(out.warnings) == 2
    assert any("'title'" in w for w in out.warnings)
    assert any("'price'" in w for w in out.warnings)
    assert pdf_text(out.data) == [""]
    scene = render_scene(template, {"title": "Here"})
    assert scene_lines(scene) == ["Here", ""]
    assert [w for w in scene.warnings if "'price'" in w] and \
        not [w for w in scene.warnings if "'title'" in w]


@pytest.mark.parametrize("source", ["{{ price * }}", "{% if %}yes{% endif %}", "{{ title | }}"])
def test_a_broken_expression_names_the_layer_and_property(source):
    template = small()
    template["layers"][1]["text"] = source
    with pytest.raises(ExpressionError) as caught:
        render(template, VARS)
    assert caught.value.path == "layers[1].text"
    assert "layers[1].text" in str(caught.value)


def test_a_type_error_at_render_time_names_the_path():
    template = small()
    template["layers"][1]["text"] = "{{ title - 1 }}"
    tpl = load_template(template)  # it parses: the error needs the data
    with pytest.raises(ExpressionError) as caught:
        render(tpl, VARS)
    assert caught.value.path == "layers[1].text"
    assert "Hello" in str(caught.value)


# --- PDF ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def card_outputs(demo_dir):
    card = load_template(demo_dir / "card.json")
    variables = {**card.samples(), "title": "Linen shirts for long summer evenings by the sea",
                 "price": "49"}
    return (card, variables, render_scene(card, variables),
            render(card, variables, format="pdf"), render(card, variables, format="png"))


def test_pdf_text_has_the_raster_layout_lines_and_sizes(card_outputs):
    _, _, scene, pdf, _ = card_outputs
    expected = [(line, item.size) for item in text_items(scene) for line in item.lines]
    assert len(expected) >= 4  # the title wraps
    assert pdf_text(pdf.data) == ["\n".join(line for line, _ in expected)]
    assert pdf_lines_with_sizes(pdf.data) == [(line, pytest.approx(size))
                                              for line, size in expected]


def test_pdf_page_size_is_in_points(card_outputs):
    card, _, _, pdf, _ = card_outputs
    assert pdf_page_size(pdf.data) == pytest.approx((1200 * 0.75, 630 * 0.75))
    assert (pdf.width, pdf.height) == (1200, 630)


def test_the_rasterized_pdf_looks_like_the_png(card_outputs):
    _, _, _, pdf, png = card_outputs
    assert mean_diff(rasterize_pdf(pdf.data), open_image(png.data)) < 6


def test_a_scaled_pdf_keeps_the_layout():
    one = render(SMALL, VARS, format="pdf")
    two = render(SMALL, VARS, format="pdf", scale=2)
    assert pdf_page_size(two.data) == pytest.approx((320 * 0.75, 180 * 0.75))
    assert pdf_text(two.data) == pdf_text(one.data)


def test_merged_pdfs_have_a_page_per_render():
    titles = ["First", "Second", "Third"]
    merged = merge_pdfs([render(SMALL, {"title": t, "price": i}, format="pdf").data
                         for i, t in enumerate(titles, start=1)])
    document = pdfium.PdfDocument(merged)
    try:
        assert len(document) == 3
    finally:
        document.close()
    assert pdf_text(merged) == ["First\n$0.90", "Second\n$1.80", "Third\n$2.70"]


# --- animated GIF ---------------------------------------------------------------------------------

def gif_frames(data: bytes) -> list[tuple[Image.Image, int]]:
    image = Image.open(io.BytesIO(data))
    return [(frame.convert("RGB"), frame.info["duration"])
            for frame in ImageSequence.Iterator(image)]


def assert_frames_show(frames: list[Image.Image], stills: list[Image.Image]) -> None:
    """Each frame looks most like its own still (PNG render of that frame's variables)."""
    for index, frame in enumerate(frames):
        distances = [mean_diff(frame, still) for still in stills]
        assert distances[index] < 3
        assert distances.index(min(distances)) == index, distances


def test_frames_make_an_animated_gif():
    template = small(frames=[{"variables": {"title": "One"}, "duration": 100},
                             {"variables": {"title": "Two", "price": "2"}, "duration": 250},
                             {"variables": {"title": "Three"}, "duration": 400}])
    out = render(template, VARS, format="gif")
    frames = gif_frames(out.data)
    assert [duration for _, duration in frames] == [100, 250, 400]
    stills = [open_image(render(SMALL, {**VARS, **v}).data)
              for v in ({"title": "One"}, {"title": "Two", "price": "2"}, {"title": "Three"})]
    assert_frames_show([frame for frame, _ in frames], stills)
    # other formats draw the template once, with the request's own variables
    assert open_image(render(template, VARS, format="png").data).size == (160, 90)
    assert render(template, VARS, format="png").key == render(template, VARS, format="png").key


COUNTDOWN = {
    "kind": "layered", "name": "Countdown", "width": 300, "height": 80, "background": "#111827",
    "variables": {"ends_at": {"type": "date"}},
    "layers": [{"name": "clock", "type": "text", "x": 10, "y": 10, "width": 280, "height": 60,
                "text": "{{ dd }}d {{ hh }}:{{ mm }}:{{ ss }}", "font": "Noto Sans Mono",
                "size": 36, "color": "#f9fafb", "align": "center", "valign": "middle"}],
    "frames": {"countdown": {"until": "{{ ends_at }}", "frames": 4, "step": 1}},
}
ENDS = {"ends_at": "2030-01-01T00:00:00Z"}
NOW = dt.datetime(2029, 12, 30, 22, 57, 2, tzinfo=dt.UTC)  # 1 day, 1:02:58 before the end


def clock(seconds: int) -> dict[str, str]:
    days, rest = divmod(seconds, 86400)
    return {"dd": f"{days:02d}", "hh": f"{rest // 3600:02d}", "mm": f"{rest % 3600 // 60:02d}",
            "ss": f"{rest % 60:02d}"}


def test_a_countdown_counts_down_frame_by_frame():
    out = render(COUNTDOWN, ENDS, format="gif", now=NOW)
    frames = gif_frames(out.data)
    assert [duration for _, duration in frames] == [1000] * 4
    left = 86400 + 3600 + 2 * 60 + 58
    stills = [open_image(render(COUNTDOWN, {**ENDS, **clock(left - i)}).data) for i in range(4)]
    assert_frames_show([frame for frame, _ in frames], stills)
    scene = render_scene(COUNTDOWN, {**ENDS, **clock(left)})
    assert scene_lines(scene) == ["01d 01:02:58"]


def test_a_countdown_that_has_ended_shows_zeros():
    out = render(COUNTDOWN, ENDS, format="gif", now=dt.datetime(2031, 5, 1, tzinfo=dt.UTC))
    zeros = open_image(render(COUNTDOWN, {**ENDS, **clock(0)}).data)
    frames = gif_frames(out.data)
    assert sum(duration for _, duration in frames) == 4000
    for frame, _ in frames:
        assert mean_diff(frame, zeros) < 3


def test_a_countdown_key_moves_with_each_step():
    def key(now):
        return render_key(COUNTDOWN, ENDS, format="gif", now=now)

    assert key(NOW) == key(NOW + dt.timedelta(milliseconds=500))
    assert key(NOW) != key(NOW + dt.timedelta(seconds=1))
    assert render(COUNTDOWN, ENDS, format="gif", now=NOW).key == key(NOW)
    # a still image of the template does not change with time
    assert render_key(COUNTDOWN, ENDS, format="png", now=NOW) == \
        render_key(COUNTDOWN, ENDS, format="png", now=NOW + dt.timedelta(hours=1))


@pytest.mark.parametrize(("step", "later"), [(1, dt.timedelta(milliseconds=500)),
                                             (60, dt.timedelta(seconds=30))])
def test_a_countdown_key_names_one_picture(step, later):
    """Two renders with the same key are the same file: caches serve one for the other."""
    template = json.loads(json.dumps(COUNTDOWN))
    template["frames"]["countdown"]["step"] = step
    first = render(template, ENDS, format="gif", now=NOW)
    second = render(template, ENDS, format="gif", now=NOW + later)
    assert first.key == second.key
    differing = [index for index, ((a, _), (b, _)) in
                 enumerate(zip(gif_frames(first.data), gif_frames(second.data), strict=True))
                 if mean_diff(a, b) > 0]
    assert not differing, f"one key, two pictures: frames {differing} differ"
    assert first.data == second.data


# --- HTML templates -------------------------------------------------------------------------------

def test_the_demo_certificate_as_pdf(load_demo):
    certificate = load_demo("certificate")
    out = render(certificate, certificate.samples(), format="pdf")
    text = pdf_text(out.data)[0]
    assert "Ada Lovelace" in text
    assert "Analytical Engines 101" in text
    assert "21 November 2026" in text
    assert pdf_page_size(out.data) == pytest.approx((1123 * 0.75, 794 * 0.75))
    assert out.warnings == []


def test_the_demo_certificate_as_png(load_demo):
    certificate = load_demo("certificate")
    out = render(certificate, certificate.samples(), format="png")
    image = open_image(out.data)
    assert image.size == (out.width, out.height) == (1123, 794)
    pixels = np.asarray(image.convert("RGB"))
    assert (pixels[5, 5] == (0x1E, 0x3A, 0x8A)).all()  # the border
    assert pixels.std() > 10  # and something drawn on the page


def test_html_missing_variables_are_warned_about(load_demo):
    certificate = load_demo("certificate")
    out = render(certificate, {"name": "Grace Hopper"}, format="pdf")
    assert [w for w in out.warnings if "'course'" in w] and \
        [w for w in out.warnings if "'date'" in w]
    assert not [w for w in out.warnings if "'name'" in w]
    assert "Grace Hopper" in pdf_text(out.data)[0]


def test_html_variables_are_escaped(load_demo):
    certificate = load_demo("certificate")
    name = "<b>x</b> & <i>co</i>"
    out = render(certificate, {**certificate.samples(), "name": name}, format="pdf")
    lines = pdf_text(out.data)[0].split("\n")
    assert name in lines


RED = png_bytes(solid((255, 0, 0), (10, 10), "RGB"))


def html_image(src: str) -> dict:
    return {"kind": "html", "name": "Remote", "width": 100, "height": 50,
            "html": f'<img src="{src}" style="display:block;width:100px;height:50px">'}


def test_html_remote_images_go_through_the_injected_fetch():
    fetch = FakeFetch({"https://img.example/red.png": RED})
    out = render(html_image("https://img.example/red.png"), {}, format="png", fetch=fetch)
    assert fetch.calls == ["https://img.example/red.png"]
    assert open_image(out.data).convert("RGB").getpixel((50, 25)) == (255, 0, 0)

    def plain(url: str) -> bytes:
        return RED

    out = render(html_image("http://img.example/any.png"), {}, format="png", fetch=plain,
                 scale=2)
    image = open_image(out.data).convert("RGB")
    assert image.size == (out.width, out.height) == (200, 100)
    assert image.getpixel((190, 90)) == (255, 0, 0)


@pytest.mark.parametrize("src", ["file:///etc/hostname", "file:///etc/passwd",
                                 "FILE:///etc/hostname"])
def test_html_local_files_are_refused(src):
    fetch = FakeFetch({})
    with pytest.raises(ResourceError, match="not allowed"):
        render(html_image(src), {}, format="pdf", fetch=fetch)
    assert fetch.calls == []


def test_html_css_cannot_read_local_files():
    template = {"kind": "html", "name": "CSS", "width": 100, "height": 50,
                "html": "<div>x</div>", "css": "div { background: url(file:///etc/hostname) }"}
    with pytest.raises(ResourceError, match="not allowed"):
        render(template, {}, format="pdf")


def test_html_remote_images_without_a_fetcher_are_refused():
    with pytest.raises(ResourceError):
        render(html_image("https://img.example/red.png"), {}, format="pdf")


def test_html_fetch_failures_fail_the_render():
    fetch = FakeFetch({})
    with pytest.raises(ResourceError, match="img.example"):
        render(html_image("https://img.example/gone.png"), {}, format="png", fetch=fetch)
    assert fetch.calls == ["https://img.example/gone.png"]


def test_layer_overrides_set_properties_as_data_and_change_the_key(load_demo):
    from renderer import TemplateError, render_key

    card = load_demo("card")
    samples = card.samples()
    overrides = {"title": {"text": "{{ 7*7 }}", "color": "#ffff00"}, "badge": {"visible": "no"}}
    scene = render_scene(card, samples, overrides=overrides)
    title = next(item for item in scene.items if item.common.name == "title")
    assert title.lines == ("{{ 7*7 }}",)  # data, never evaluated
    assert title.color.rgba == (255, 255, 0, 255)
    assert "badge" not in {item.common.name for item in scene.items}
    keyed = render_key(card, samples, overrides=overrides)
    assert keyed == render(card, samples, overrides=overrides).key
    assert keyed != render_key(card, samples)
    with pytest.raises(TemplateError) as info:
        render_key(card, samples, overrides={"titel": {"text": "x"}})
    assert info.value.path == "layers.titel" and "did you mean 'title'" in info.value.message
    with pytest.raises(TemplateError) as info:
        render_key(card, samples, overrides={"title": {"size": "huge"}})
    assert info.value.path == "layers.title.size"
