"""Image layers: where pictures may come from, what is refused before any pixel is decoded,
and how a picture is fitted, cropped and masked into its box (checked by pixels)."""

from __future__ import annotations

import base64
import io
import struct
import urllib.parse
import zlib

import pytest
from helpers import FakeFetch, close_to, color_at, open_image, png_bytes, png_data_uri, solid
from PIL import EpsImagePlugin, Image

from renderer import LimitError, Limits, ResourceError, render
from renderer.api import directory_assets
from renderer.images import decode, read_source

RED, BLUE, GREEN, YELLOW = (255, 0, 0, 255), (0, 0, 255, 255), (0, 255, 0, 255), (255, 255, 0, 255)
CLEAR = (0, 0, 0, 0)


def halves(size=(200, 100), first=RED, second=BLUE) -> Image.Image:
    """Two colours side by side (wide) or one above the other (tall)."""
    width, height = size
    image = Image.new("RGBA", size, first)
    box = (width // 2, 0, width, height) if width >= height else (0, height // 2, width, height)
    image.paste(second, box)
    return image


def one_image(src, *, width=100, height=100, **props):
    layer = {"name": "photo", "type": "image", "x": 0, "y": 0, "width": width,
             "height": height, "src": src, **props}
    return {"width": width, "height": height, "layers": [layer]}


def picture(template, **options):
    out = render(template, options.pop("variables", None), transparent=True, **options)
    return open_image(out.data).convert("RGBA")


def failure(template, error=ResourceError, **options):
    with pytest.raises(error) as info:
        render(template, **options)
    return info.value


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` and which holds no pixels at all:
    decoding it would fail as truncated, so a LimitError proves the header was checked first."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b""))
            + chunk(b"IEND", b""))


def data_uri(data: bytes, mime="image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


# ------------------------------------------------------------------ sources


def test_data_uri_base64():
    image = picture(one_image(png_data_uri(Image.new("RGB", (4, 4), "red"))))
    assert color_at(image, (50, 50)) == RED


def test_data_uri_percent_encoded():
    encoded = urllib.parse.quote_from_bytes(png_bytes(Image.new("RGB", (4, 4), "lime")))
    image = picture(one_image("data:image/png," + encoded))
    assert color_at(image, (50, 50)) == GREEN


@pytest.mark.parametrize(("src", "message"), [
    ("data:image/png;base64", "no comma"),
    ("data:image/png;base64,abc", "malformed data: URI"),
])
def test_malformed_data_uri(src, message):
    error = failure(one_image(src))
    assert error.path == "layers[0].src"
    assert message in error.message and "'photo'" in error.message


def test_asset_from_the_template_folder(demo_assets):
    image = picture(one_image("asset:logo.png", fit="fill"), assets=demo_assets)
    logo = open_image(demo_assets("logo.png")).convert("RGBA")
    expected = logo.resize((100, 100), Image.Resampling.LANCZOS)
    assert close_to(color_at(image, (50, 50)), color_at(expected, (50, 50)), 8)


@pytest.mark.parametrize("name", ["../card.json", "../../pyproject.toml", "/etc/passwd",
                                  "..%2Fcard.json", "nope.png"])
def test_assets_cannot_climb_out_of_their_folder(tmp_path, name):
    (tmp_path / "inside").mkdir()
    (tmp_path / "card.json").write_text("{}")
    read = directory_assets(tmp_path / "inside")
    with pytest.raises(ResourceError) as info:
        read(name)
    assert repr(name) in info.value.message


def test_asset_symlink_out_of_the_folder_is_refused(tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(png_bytes(Image.new("RGB", (2, 2))))
    folder = tmp_path / "assets"
    folder.mkdir()
    (folder / "link.png").symlink_to(secret)
    (folder / "ok.png").write_bytes(secret.read_bytes())
    read = directory_assets(folder)
    assert read("ok.png") == secret.read_bytes()
    with pytest.raises(ResourceError):
        read("link.png")


def test_asset_escape_fails_the_render_naming_the_layer(demo_assets):
    error = failure(one_image("asset:../api.py"), assets=demo_assets)
    assert error.path == "layers[0].src"
    assert "'../api.py'" in error.message


def test_same_asset_name_in_two_stores_gives_two_pictures(tmp_path):
    # one workspace's logo.png must never be served to another workspace's render
    stores = {}
    for name, color in (("acme", "red"), ("globex", "blue")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "logo.png").write_bytes(png_bytes(Image.new("RGB", (4, 4), color)))
        stores[name] = directory_assets(tmp_path / name)
    assert color_at(picture(one_image("asset:logo.png"), assets=stores["acme"]), (5, 5)) == RED
    assert color_at(picture(one_image("asset:logo.png"), assets=stores["globex"]), (5, 5)) == BLUE


def test_a_reuploaded_asset_shows_the_new_picture(tmp_path):
    logo = tmp_path / "logo.png"
    logo.write_bytes(png_bytes(Image.new("RGB", (4, 4), "red")))
    assets = directory_assets(tmp_path)
    assert color_at(picture(one_image("asset:logo.png"), assets=assets), (5, 5)) == RED
    logo.write_bytes(png_bytes(Image.new("RGB", (4, 4), "blue")))
    assert color_at(picture(one_image("asset:logo.png"), assets=assets), (5, 5)) == BLUE


def test_asset_without_an_asset_store():
    error = failure(one_image("asset:logo.png"))
    assert "no asset store" in error.message


@pytest.mark.parametrize("url", ["https://cdn.example.com/a.png", "http://example.com/b.png?x=1"])
def test_remote_images_load_through_the_injected_fetch(url):
    fetch = FakeFetch({url: png_bytes(Image.new("RGB", (3, 3), "blue"))})
    image = picture(one_image(url), fetch=fetch)
    assert color_at(image, (50, 50)) == BLUE
    assert fetch.calls == [url]


def test_fetch_errors_name_the_layer_and_keep_the_reason():
    url = "https://cdn.example.com/gone.png"
    fetch = FakeFetch({url: ConnectionError("connection refused by cdn.example.com")})
    error = failure(one_image(url), fetch=fetch)
    assert error.path == "layers[0].src"
    assert "connection refused by cdn.example.com" in error.message
    assert "'photo'" in error.message


def test_remote_images_without_a_fetcher_are_refused():
    error = failure(one_image("https://example.com/a.png"), fetch=None)
    assert error.path == "layers[0].src"
    assert "remote images are not enabled" in error.message


@pytest.mark.parametrize("src", ["file:///etc/passwd", "ftp://example.com/a.png",
                                 "javascript:alert(1)", "gopher://x/y", "/etc/passwd",
                                 "photo.jpg", "FILE:/etc/hosts"])
def test_other_schemes_are_refused(src):
    fetch = FakeFetch({})
    error = failure(one_image(src), fetch=fetch)
    assert error.path == "layers[0].src"
    assert "only http(s), asset: and data: sources are allowed" in error.message
    assert fetch.calls == []


def test_uppercase_scheme_still_goes_through_fetch():
    url = "HTTPS://example.com/a.png"
    fetch = FakeFetch({url: png_bytes(Image.new("RGB", (2, 2), "red"))})
    assert color_at(picture(one_image(url), fetch=fetch), (5, 5)) == RED


# ------------------------------------------------------------------ decoding and limits


@pytest.mark.parametrize("payload", [b"hello, world", b"", b"\x89PNG\r\n\x1a\n garbage"])
def test_undecodable_bytes(payload):
    error = failure(one_image(data_uri(payload)))
    assert isinstance(error, ResourceError)
    assert error.path == "layers[0].src"
    assert "is not a decodable image" in error.message
    assert "BytesIO" not in error.message  # no Python object reprs in a user's error


def test_postscript_never_reaches_ghostscript(monkeypatch):
    calls = []

    def ghostscript(*args, **kwargs):
        calls.append(args)
        raise OSError("Ghostscript was run")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", ghostscript)
    eps = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n%%EndComments\n"
           b"1 0 0 setrgbcolor 0 0 10 10 rectfill showpage\n%%EOF\n")
    error = failure(one_image(data_uri(eps, "application/postscript")))
    assert "is not a decodable image" in error.message
    assert calls == []


def test_decompression_bomb_is_refused_from_its_header():
    with pytest.raises(LimitError) as info:
        decode(png_header(30000, 30000), max_pixels=40_000_000, path="layers[0].src")
    assert info.value.path == "layers[0].src"
    assert "decompression bomb" in info.value.message


def test_our_pixel_limit_is_checked_before_decoding():
    # 49 MP is under Pillow's own bomb threshold: only our limit can catch it
    with pytest.raises(LimitError) as info:
        decode(png_header(7000, 7000), max_pixels=40_000_000, path="layers[2].src")
    assert "7000x7000 = 49,000,000 pixels; the limit is 40,000,000" in info.value.message


def test_decompression_bomb_fails_the_render_naming_the_layer():
    error = failure(one_image(data_uri(png_header(30000, 30000))), error=Exception)
    assert error.code == "limit_exceeded"
    assert error.path == "layers[0].src" and "'photo'" in error.message


def test_limit_errors_keep_their_type_through_render():
    # callers map LimitError and ResourceError to different answers (413 vs 422)
    failure(one_image(data_uri(png_header(7000, 7000))), error=LimitError)


def test_pixel_limit_is_configurable():
    src = png_data_uri(Image.new("RGB", (40, 30), "red"))
    error = failure(one_image(src), error=Exception, limits=Limits(max_image_pixels=1000))
    assert error.code == "limit_exceeded"
    assert "40x30 = 1,200 pixels; the limit is 1,000" in error.message


def test_byte_limit():
    data = png_bytes(Image.new("RGB", (64, 64), "red"))
    with pytest.raises(LimitError) as info:
        read_source(data_uri(data), fetch=None, assets=None, max_bytes=len(data) - 1,
                    path="layers[0].src")
    assert f"{len(data):,} bytes; the limit is {len(data) - 1:,}" in info.value.message
    assert read_source(data_uri(data), fetch=None, assets=None, max_bytes=len(data),
                       path="p") == data


def test_byte_limit_applies_to_fetched_images_in_a_render():
    url = "https://example.com/big.png"
    fetch = FakeFetch({url: png_bytes(Image.new("RGB", (64, 64), "red")) + b"\0" * 5000})
    error = failure(one_image(url), error=Exception, fetch=fetch,
                    limits=Limits(max_image_bytes=4096))
    assert error.code == "limit_exceeded" and error.path == "layers[0].src"


@pytest.mark.parametrize("limits", [Limits(max_image_bytes=50), Limits(max_image_pixels=100)])
def test_a_warm_cache_does_not_lift_tighter_limits(limits):
    src = png_data_uri(Image.new("RGB", (31, 17), (1, 2, 3)))
    render(one_image(src))  # decoded and cached under the default limits
    error = failure(one_image(src), error=Exception, limits=limits)
    assert error.code == "limit_exceeded"


def test_exif_orientation_is_applied():
    source = halves((20, 10))  # red left, blue right, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": the left edge becomes the top
    buffer = io.BytesIO()
    source.convert("RGB").save(buffer, "PNG", exif=exif)
    image = picture(one_image(data_uri(buffer.getvalue()), width=10, height=20, fit="fill"))
    assert close_to(color_at(image, (5, 2)), RED, 8)
    assert close_to(color_at(image, (5, 17)), BLUE, 8)


# ------------------------------------------------------------------ fitting and focal points

WIDE = halves((200, 100))  # red left, blue right
TALL = halves((100, 200))  # red top, blue bottom


@pytest.mark.parametrize(("position", "left", "right"), [
    ("center", RED, BLUE), ("top", RED, BLUE), ("bottom", RED, BLUE),
    ("left", RED, RED), ("top-left", RED, RED), ("bottom-left", RED, RED),
    ("right", BLUE, BLUE), ("top-right", BLUE, BLUE), ("bottom-right", BLUE, BLUE),
])
def test_cover_crops_a_wide_picture_towards_the_focal_point(position, left, right):
    image = picture(one_image(png_data_uri(WIDE), fit="cover", position=position))
    assert color_at(image, (5, 50)) == left
    assert color_at(image, (94, 50)) == right
    assert color_at(image, (5, 5))[3] == 255  # cover leaves no gaps


@pytest.mark.parametrize(("position", "top", "bottom"), [
    ("center", RED, BLUE), ("left", RED, BLUE), ("top", RED, RED), ("top-right", RED, RED),
    ("bottom", BLUE, BLUE), ("bottom-left", BLUE, BLUE),
])
def test_cover_crops_a_tall_picture_towards_the_focal_point(position, top, bottom):
    image = picture(one_image(png_data_uri(TALL), fit="cover", position=position))
    assert color_at(image, (50, 5)) == top
    assert color_at(image, (50, 94)) == bottom


@pytest.mark.parametrize(("position", "band"), [
    ("center", (25, 75)), ("top", (0, 50)), ("top-right", (0, 50)), ("bottom", (50, 100)),
    ("bottom-left", (50, 100)), ("left", (25, 75)),
])
def test_contain_letterboxes_at_the_focal_point(position, band):
    image = picture(one_image(png_data_uri(WIDE), fit="contain", position=position))
    top, bottom = band
    assert color_at(image, (10, top + 2)) == RED and color_at(image, (90, bottom - 3)) == BLUE
    if top > 0:
        assert color_at(image, (10, top - 2)) == CLEAR
    if bottom < 100:
        assert color_at(image, (90, bottom + 1)) == CLEAR


def test_contain_keeps_the_whole_picture():
    image = picture(one_image(png_data_uri(WIDE), fit="contain", position="center"))
    assert color_at(image, (1, 50)) == RED and color_at(image, (98, 50)) == BLUE


def test_fill_stretches_and_ignores_position():
    image = picture(one_image(png_data_uri(TALL), fit="fill", position="bottom", width=100,
                              height=40))
    assert color_at(image, (50, 3)) == RED and color_at(image, (50, 36)) == BLUE
    assert color_at(image, (1, 1)) == RED and color_at(image, (98, 38)) == BLUE


# ------------------------------------------------------------------ masks and grayscale


def test_radius_rounds_the_corners():
    image = picture(one_image(png_data_uri(WIDE), radius=30))
    for corner in [(0, 0), (99, 0), (0, 99), (99, 99), (4, 4), (95, 95)]:
        assert color_at(image, corner)[3] == 0, corner
    for inside in [(50, 50), (30, 1), (1, 30), (12, 12), (87, 87)]:
        assert color_at(image, inside)[3] == 255, inside


def test_circle_mask():
    image = picture(one_image(png_data_uri(WIDE), mask="circle", radius=0))
    for outside in [(0, 0), (99, 0), (0, 99), (99, 99), (12, 12), (87, 87)]:
        assert color_at(image, outside)[3] == 0, outside
    for inside in [(50, 50), (50, 3), (3, 50), (96, 50), (50, 96), (20, 20)]:
        assert color_at(image, inside)[3] == 255, inside
    assert color_at(image, (10, 50)) == RED and color_at(image, (90, 50)) == BLUE


def test_circle_mask_on_a_wide_box_is_an_ellipse():
    image = picture(one_image(png_data_uri(WIDE), mask="circle", width=200, height=100))
    assert color_at(image, (3, 50))[3] == 255 and color_at(image, (196, 50))[3] == 255
    assert color_at(image, (30, 5))[3] == 0


def test_grayscale_keeps_alpha():
    source = halves((100, 100), RED, CLEAR)
    image = picture(one_image(png_data_uri(source), grayscale=True))
    r, g, b, a = color_at(image, (25, 50))
    assert r == g == b and abs(r - 76) <= 2 and a == 255  # ITU-R 601 luma of pure red
    assert color_at(image, (75, 50))[3] == 0


# ------------------------------------------------------------------ failures, fallback, optional


def failing_card(**photo):
    return {"width": 60, "height": 40, "background": "#00ff00", "layers": [
        {"name": "backdrop", "type": "rect", "width": 60, "height": 40, "fill": "#ffff00"},
        {"name": "photo", "type": "image", "width": 30, "height": 40,
         "src": "asset:missing.png", **photo}]}


def test_fallback_is_used_when_src_fails(demo_assets):
    fallback = png_data_uri(Image.new("RGB", (4, 4), "blue"))
    out = render(failing_card(fallback=fallback), assets=demo_assets)
    image = open_image(out.data)
    assert color_at(image, (10, 20)) == BLUE and color_at(image, (50, 20)) == YELLOW


def test_fallback_from_an_expression(demo_assets):
    template = failing_card(src="{{ photo }}", fallback="{{ placeholder }}")
    variables = {"photo": "asset:nope.png",
                 "placeholder": png_data_uri(Image.new("RGB", (4, 4), "red"))}
    image = open_image(render(template, variables, assets=demo_assets).data)
    assert color_at(image, (10, 20)) == RED


def test_optional_image_is_skipped_with_a_warning(demo_assets):
    out = render(failing_card(optional=True), assets=demo_assets)
    assert color_at(open_image(out.data), (10, 20)) == YELLOW  # what lies beneath shows
    assert len(out.warnings) == 1
    assert "layers[1]" in out.warnings[0] and "photo" in out.warnings[0]
    assert "missing.png" in out.warnings[0]


def test_failing_image_fails_the_render_naming_the_layer(demo_assets):
    error = failure(failing_card(), assets=demo_assets)
    assert error.path == "layers[1].src"
    assert "image layer 'photo'" in error.message and "missing.png" in error.message


def test_failing_fallback_reports_the_original_source(demo_assets):
    error = failure(failing_card(fallback="https://example.com/x.png"), assets=demo_assets)
    assert "missing.png" in error.message


def test_image_variable_with_a_sample(load_demo, demo_assets):
    tpl = load_demo("card")
    out = render(tpl, tpl.samples() | {"photo": png_data_uri(Image.new("RGB", (8, 8), "red"))},
                 assets=demo_assets)
    assert color_at(open_image(out.data), (280, 315)) == RED


def test_a_stamped_asset_is_not_read_again_until_it_changes(tmp_path):
    from renderer.assets import DirectoryAssets

    class Counting(DirectoryAssets):
        reads = 0

        def __call__(self, name):
            Counting.reads += 1
            return super().__call__(name)

    (tmp_path / "pic.png").write_bytes(png_bytes(solid((200, 0, 0), (30, 20))))
    assets = Counting(tmp_path)
    template = {"width": 30, "height": 20, "layers": [
        {"name": "p", "type": "image", "x": 0, "y": 0, "width": 30, "height": 20,
         "src": "asset:pic.png"}]}
    first = open_image(render(template, {}, assets=assets).data)
    render(template, {}, assets=assets)
    assert Counting.reads == 1
    (tmp_path / "pic.png").write_bytes(png_bytes(solid((0, 0, 200), (30, 21))))
    second = open_image(render(template, {}, assets=assets).data)
    assert Counting.reads == 2
    assert first.convert("RGB").getpixel((5, 5)) == (200, 0, 0)
    assert second.convert("RGB").getpixel((5, 5)) == (0, 0, 200)
