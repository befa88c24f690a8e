"""``POST /renders``, ``GET /renders/{id}`` and ``GET /renders`` against the running server:
status codes, JSON errors, the pictures behind the returned URLs, remote images from a fake
site on loopback, and outbound requests refused before they connect."""

from __future__ import annotations

import base64
import contextlib
import io
import shutil
import socket
import struct
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import services
from helpers import error_of, ink, open_image, png_bytes, png_data_uri, rgba
from PIL import Image
from samples import HEADLINE

RED = (220, 38, 38)
BLUE = (37, 99, 235)
GREEN = (22, 163, 74)
ORANGE = (234, 88, 12)

PHOTO = {
    "name": "Photo", "width": 120, "height": 60, "background": "#ffffff",
    "variables": {"photo": {"type": "image"}},
    "layers": [{"name": "photo", "type": "image", "x": 0, "y": 0, "width": 120, "height": 60,
                "src": "{{ photo }}", "fit": "fill"}],
}
MAGIC = {"png": (0, b"\x89PNG\r\n\x1a\n"), "jpeg": (0, b"\xff\xd8\xff"), "webp": (8, b"WEBP"),
         "avif": (4, b"ftypavif"), "gif": (0, b"GIF8"), "pdf": (0, b"%PDF-")}
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp",
                 "avif": "image/avif", "gif": "image/gif", "pdf": "application/pdf"}


# ---------------------------------------------------------------- fixtures

class FakeSite:
    """A remote web site, really served over HTTP on 127.0.0.1 (which the test configuration
    allows): pictures and the failures real sites have. Records every path it was asked for."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.requests: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802  (http.server's name)
                site.requests.append(self.path)
                status, headers, body = site.pages.get(self.path, (404, {}, b"not found"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def serve(self, path: str, body: bytes, *, status: int = 200, declare_length: bool = True,
              headers: dict[str, str] | None = None) -> str:
        """Serve ``body`` at ``path``; without ``declare_length`` the body just runs until the
        connection closes (HTTP/1.0), so only counting the bytes can stop it."""
        fields = {"Content-Type": "image/png", **(headers or {})}
        if declare_length:
            fields["Content-Length"] = str(len(body))
        self.pages[path] = (status, fields, body)
        return self.url(path)

    def hits(self, path: str) -> int:
        return self.requests.count(path)


@pytest.fixture(scope="module")
def site() -> Iterator[FakeSite]:
    fake = FakeSite()
    thread = threading.Thread(target=fake.server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


class Trap:
    """Listening sockets on loopback addresses that are NOT on the allowlist (127.0.0.2 and
    [::1]), on one port. A guarded fetch must refuse them before connecting, so nothing may
    ever be waiting in their accept queues."""

    def __init__(self) -> None:
        for _ in range(20):
            first = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            first.bind(("127.0.0.2", 0))
            self.port = first.getsockname()[1]
            second = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            try:
                second.bind(("::1", self.port))
            except OSError:
                first.close()
                second.close()
                continue
            self.sockets = [first, second]
            break
        else:
            raise RuntimeError("no port free on both 127.0.0.2 and [::1]")
        for sock in self.sockets:
            sock.listen(16)
            sock.setblocking(False)

    def connections(self) -> int:
        count = 0
        for sock in self.sockets:
            with contextlib.suppress(BlockingIOError):
                while True:
                    conn, _ = sock.accept()
                    conn.close()
                    count += 1
        return count

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def trap() -> Iterator[Trap]:
    listener = Trap()
    yield listener
    listener.close()


def create(api, content: dict) -> int:
    response = api.post("/templates", json=content)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def render(api, template: int, **body):
    return api.post("/renders", json={"template": template, **body})


def picture(api, render_object: dict) -> Image.Image:
    response = api.get(render_object["url"])
    assert response.status_code == 200, response.text
    return open_image(response.content)


def stored_renders(tmp_path) -> list[str]:
    """Every file under the storage's renders/ folder, temporary files included."""
    root = tmp_path / "storage" / "renders"
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


def solid_png(rgb: tuple[int, int, int], size: tuple[int, int] = (24, 24)) -> bytes:
    return png_bytes(Image.new("RGB", size, rgb))


def solid_data_uri(rgb: tuple[int, int, int]) -> str:
    return png_data_uri(Image.new("RGB", (8, 8), rgb))


def bomb_png(width: int = 30_000, height: int = 30_000) -> bytes:
    """A PNG header declaring ``width`` x ``height`` (900 megapixels) in a few hundred bytes:
    a decoder that trusted it would inflate gigabytes. Only the header is needed to refuse it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    rows = zlib.compress(b"\x00" * (width + 1) * 4)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(
        b"IEND", b"")


def noise_png(size: int) -> bytes:
    pixels = np.random.default_rng(7).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return png_bytes(Image.fromarray(pixels, "RGB"))


# ---------------------------------------------------------------- rendering and the cache

def test_render_is_stored_then_answered_from_the_cache(api):
    template = create(api, HEADLINE)
    metadata = {"order": 42, "tags": ["spring"]}
    first = render(api, template, variables={"title": "Hi"}, metadata=metadata)
    assert first.status_code == 201, first.text
    made = first.json()
    assert made["status"] == "completed" and made["cached"] is False
    assert (made["width"], made["height"], made["format"]) == (160, 80, "png")
    assert (made["template"], made["version"], made["metadata"]) == (template, 1, metadata)
    assert made["url"] == f"{api.base}/r/{made['key']}.png"
    assert made["warnings"] == [] and made["error"] is None and made["completed_at"]

    image = picture(api, made)
    assert image.size == (160, 80)
    assert ink(image, RED) > 100  # the title in its colour
    assert ink(image, BLUE) > 1000  # the bar

    again = render(api, template, variables={"title": "Hi"}, metadata=metadata)
    assert again.status_code == 200, again.text
    repeat = again.json()
    assert repeat["cached"] is True
    assert (repeat["id"], repeat["key"], repeat["url"]) == (made["id"], made["key"], made["url"])

    me = api.get("/me").json()
    assert me["usage"]["renders"] == 1  # the cached answer was free
    listed = api.get("/renders").json()["data"]
    assert [r["id"] for r in listed] == [made["id"]]

    stored = api.get(f"/renders/{made['id']}")
    assert stored.status_code == 200
    assert {k: v for k, v in stored.json().items() if k != "cached"} == {
        k: v for k, v in made.items() if k != "cached"}


def test_each_format_is_served_with_its_type(api):
    template = create(api, HEADLINE)
    keys = {}
    for fmt in ("png", "jpeg", "webp", "avif", "gif", "pdf"):
        response = render(api, template, variables={"title": "Hi"}, format=fmt)
        assert response.status_code == 201, (fmt, response.text)
        made = response.json()
        keys[fmt] = made["key"]
        served = api.get(made["url"])
        assert served.status_code == 200
        assert served.headers["Content-Type"] == CONTENT_TYPES[fmt]
        offset, magic = MAGIC[fmt]
        assert served.content[offset:offset + len(magic)] == magic, fmt
        if fmt != "pdf":
            image = open_image(served.content)
            assert image.size == (160, 80), fmt
            assert ink(image, RED, tolerance=60) > 50, fmt
    assert len(set(keys.values())) == 6

    alias = render(api, template, variables={"title": "Hi"}, format="jpg")
    assert alias.status_code == 200 and alias.json()["cached"] is True
    assert alias.json()["key"] == keys["jpeg"] and alias.json()["url"].endswith(".jpg")

    refused = render(api, template, variables={"title": "Hi"}, format="bmp")
    assert error_of(refused, 400)["code"] == "invalid_request"


def test_size_variant_and_scale_change_the_dimensions(api):
    template = create(api, HEADLINE)
    cases = [({"size": "wide"}, (320, 80)), ({"scale": 2}, (320, 160)),
             ({"scale": 1.5}, (240, 120)), ({"size": "wide", "scale": 2}, (640, 160))]
    for options, size in cases:
        response = render(api, template, variables={"title": "Hi"}, **options)
        assert response.status_code == 201, (options, response.text)
        made = response.json()
        assert (made["width"], made["height"]) == size, options
        image = picture(api, made)
        assert image.size == size, options
        assert ink(image.crop((0, size[1] - 2, size[0], size[1])), BLUE) == 2 * size[0], \
            "the bar spans the whole width"

    unknown = error_of(render(api, template, variables={"title": "Hi"}, size="story"), 422)
    assert unknown["code"] == "unknown_size" and "story" in unknown["message"]
    for scale in (0.5, 5):
        bad = error_of(render(api, template, variables={"title": "Hi"}, scale=scale), 400)
        assert bad["code"] == "invalid_request" and "scale" in bad["message"]


def test_placid_layers_and_bannerbear_modifications_match_variables(api):
    template = create(api, HEADLINE)
    by_variables = render(api, template, variables={"title": "Hey"})
    by_layers = render(api, template, layers={"title": {"text": "Hey"}})
    by_modifications = render(api, template, modifications=[{"name": "title", "text": "Hey"}])
    assert by_variables.status_code == 201 and by_layers.status_code == 201
    # both shapes say the same thing, so they are one request: the same key, from the cache
    assert by_modifications.status_code == 200, by_modifications.text
    assert by_modifications.json()["key"] == by_layers.json()["key"]
    assert by_layers.json()["key"] != by_variables.json()["key"]
    assert np.array_equal(rgba(picture(api, by_variables.json())),
                          rgba(picture(api, by_layers.json())))

    placid = render(api, template, layers={"title": {"text": "Hey", "color": "#16a34a"},
                                           "bar": {"background_color": "#ea580c"}})
    bannerbear = render(api, template, modifications=[
        {"name": "title", "text": "Hey", "color": "#16a34a"},
        {"name": "bar", "color": "#ea580c"}])
    assert placid.status_code == 201, placid.text
    assert bannerbear.status_code == 200 and bannerbear.json()["key"] == placid.json()["key"]
    recoloured = picture(api, placid.json())
    assert ink(recoloured, GREEN) > 100 and ink(recoloured, RED) == 0
    assert ink(recoloured, ORANGE) > 1000 and ink(recoloured, BLUE) == 0

    hidden = render(api, template, modifications=[{"name": "title", "text": "Hey"},
                                                  {"name": "bar", "hide": True}])
    assert hidden.status_code == 201
    assert ink(picture(api, hidden.json()), BLUE) == 0

    for body in ({"layers": {"subtitle": {"text": "x", "color": "#000000"}}},
                 {"modifications": [{"name": "subtitle", "text": "x", "color": "#000000"}]},
                 {"layers": {"subtitel": {"text": "typo"}}},
                 {"modifications": [{"name": "subtitel", "text": "typo"}]}):
        error = error_of(render(api, template, **body), 422)
        assert error["code"] == "unknown_layer", body
        assert "subti" in error["message"]


def test_a_property_set_by_the_request_does_not_warn_about_its_variable(api):
    template = create(api, HEADLINE)
    response = render(api, template, layers={"title": {"text": "Hey"}})
    assert response.status_code == 201, response.text
    assert response.json()["warnings"] == []


def test_missing_variables_are_warnings(api):
    template = create(api, HEADLINE)
    response = render(api, template)
    assert response.status_code == 201, response.text
    made = response.json()
    assert made["warnings"] == ["variable 'title' is missing; it rendered as empty text"]
    assert ink(picture(api, made), RED) == 0
    assert api.get(f"/renders/{made['id']}").json()["warnings"] == made["warnings"]


def test_unknown_templates_versions_and_bodies(api, other_api):
    template = create(api, HEADLINE)
    assert error_of(render(api, 999_999), 404)["code"] == "template_not_found"
    assert error_of(render(api, template, version=2), 404)["code"] == "version_not_found"
    assert error_of(render(other_api, template), 404)["code"] == "template_not_found"
    missing = error_of(api.post("/renders", json={"variables": {}}), 400)
    assert missing["code"] == "invalid_request" and "template" in missing["message"]
    assert error_of(api.post("/renders", data="{", headers={
        "Content-Type": "application/json"}), 400)["code"] == "invalid_json"
    assert error_of(api.post("/renders", data={"template": template}), 415)["code"] == \
        "unsupported_media_type"
    anonymous = api.post("/renders", json={"template": template}, token=None)
    assert error_of(anonymous, 401)["code"] == "unauthorized"


# ---------------------------------------------------------------- listing

def test_render_list_is_newest_first_with_filters(api, other_api, site):
    headline = create(api, HEADLINE)
    photo = create(api, PHOTO)
    ids = []
    for title in ("one", "two"):
        ids.append(render(api, headline, variables={"title": title}).json()["id"])
    ids.append(render(api, photo, variables={"photo": solid_data_uri(GREEN)}).json()["id"])
    failed = render(api, photo, variables={"photo": site.url("/gone.png")})
    assert failed.status_code == 422

    listed = api.get("/renders").json()["data"]
    assert [r["id"] for r in listed][1:] == ids[::-1]  # the failed one is the newest
    newest = listed[0]
    assert newest["status"] == "failed" and newest["url"] is None
    assert newest["error"]["code"] == "outbound_failed"
    assert newest["error"]["path"] == "layers[0].src"

    def ids_of(query: str) -> list[int]:
        response = api.get(f"/renders?{query}")
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()["data"]]

    assert ids_of(f"template={headline}") == ids[1::-1]
    assert ids_of("status=failed") == [newest["id"]]
    assert ids_of(f"status=completed&template={photo}") == [ids[2]]
    assert ids_of("limit=2") == [newest["id"], ids[2]]
    assert ids_of(f"before={ids[2]}") == ids[1::-1]
    assert ids_of(f"before={ids[2]}&limit=1") == [ids[1]]
    assert error_of(api.get("/renders?status=done"), 400)["code"] == "invalid_request"
    assert error_of(api.get("/renders?limit=0"), 400)["code"] == "invalid_request"

    assert other_api.get("/renders").json()["data"] == []
    assert error_of(other_api.get(f"/renders/{ids[0]}"), 404)["code"] == "render_not_found"
    assert error_of(api.get("/renders/999999"), 404)["code"] == "render_not_found"


# ---------------------------------------------------------------- remote images

def test_remote_images_come_from_the_site(api, site):
    template = create(api, PHOTO)
    green = site.serve("/green.png", solid_png(GREEN))
    orange = site.serve("/orange.png", solid_png(ORANGE))
    before = site.hits("/green.png")
    made = render(api, template, variables={"photo": green})
    assert made.status_code == 201, made.text
    assert ink(picture(api, made.json()), GREEN, tolerance=8) == 120 * 60
    fetched = site.hits("/green.png")
    assert fetched == before + 1

    again = render(api, template, variables={"photo": green})
    assert again.status_code == 200 and again.json()["cached"] is True
    assert site.hits("/green.png") == fetched  # a cached answer fetches nothing

    placid = render(api, template, layers={"photo": {"image": orange}})
    assert placid.status_code == 201, placid.text
    assert ink(picture(api, placid.json()), ORANGE, tolerance=8) == 120 * 60
    bannerbear = render(api, template, modifications=[{"name": "photo", "image_url": orange}])
    assert bannerbear.status_code == 200 and bannerbear.json()["key"] == placid.json()["key"]


def test_unreachable_images_fail_naming_the_layer_and_store_nothing(api, site, tmp_path):
    template = create(api, PHOTO)
    site.serve("/broken.png", b"database on fire", status=500)
    closed = f"http://127.0.0.1:{services.free_port()}/photo.png"
    cases = [(site.url("/missing.png"), "404"), (site.url("/broken.png"), "500"),
             (closed, "refused")]
    for url, reason in cases:
        error = error_of(render(api, template, variables={"photo": url}), 422)
        assert error["code"] == "outbound_failed", url
        assert error["details"]["path"] == "layers[0].src"
        assert "image layer 'photo'" in error["message"] and reason in error["message"], \
            error["message"]

    failed = api.get("/renders?status=failed").json()["data"]
    assert len(failed) == 3
    assert all(r["error"]["code"] == "outbound_failed" and r["url"] is None for r in failed)
    assert api.get("/renders?status=completed").json()["data"] == []
    assert stored_renders(tmp_path) == []
    assert api.get("/me").json()["usage"]["renders"] == 0


def test_hostile_urls_are_refused_before_connecting(api, site, trap):
    template = create(api, PHOTO)
    port = trap.port
    site.serve("/hop.png", b"", status=302,
               headers={"Location": f"http://127.0.0.2:{port}/x.png"})
    hostile = [
        f"http://127.0.0.2:{port}/x.png",
        f"http://[::1]:{port}/x.png",
        f"http://localhost:{port}/x.png",  # also ::1
        f"http://2130706434:{port}/x.png",  # 127.0.0.2 as one number
        f"http://0x7f000002:{port}/x.png",
        f"http://127.2:{port}/x.png",
        f"http://[::ffff:127.0.0.2]:{port}/x.png",
        f"http://0.0.0.0:{port}/x.png",
        f"http://169.254.169.254:{port}/latest/meta-data",
        site.url("/hop.png"),  # allowed itself, but redirects to 127.0.0.2
    ]
    hops = site.hits("/hop.png")
    for url in hostile:
        response = render(api, template, variables={"photo": url})
        error = error_of(response, 422)
        assert error["code"] == "outbound_refused", (url, error)
        assert "refused" in error["message"] and error["details"]["path"] == "layers[0].src"
    assert site.hits("/hop.png") == hops + 1  # went out to the site, then refused the hop
    for src in ("file:///etc/passwd", "ftp://127.0.0.1/x.png", "gopher://127.0.0.2/"):
        error = error_of(render(api, template, variables={"photo": src}), 422)
        assert error["details"]["path"] == "layers[0].src", src
    assert trap.connections() == 0


@pytest.mark.parametrize("settings", [{"MAX_IMAGE_BYTES": 4096}])
def test_images_over_the_byte_limit_are_refused(api, site, tmp_path):
    template = create(api, PHOTO)
    big = noise_png(64)
    assert len(big) > 4096
    cases = [site.serve("/big.png", big), site.serve("/stream.png", big, declare_length=False)]
    for url in cases:
        error = error_of(render(api, template, variables={"photo": url}), 422)
        assert error["code"] == "outbound_too_large", (url, error)
        assert "4,096" in error["message"] and error["details"]["path"] == "layers[0].src"
    inline = error_of(render(api, template, variables={
        "photo": png_data_uri(Image.open(io.BytesIO(big)))}), 422)
    assert inline["code"] == "limit_exceeded" and "4,096" in inline["message"]
    small = render(api, template, variables={"photo": site.serve("/small.png",
                                                                   solid_png(GREEN))})
    assert small.status_code == 201, small.text
    assert len(stored_renders(tmp_path)) == 1


def test_decompression_bombs_are_refused(api, site, tmp_path):
    template = create(api, PHOTO)
    bomb = bomb_png()
    assert len(bomb) < 2000
    url = site.serve("/bomb.png", bomb)
    data_uri = "data:image/png;base64," + base64.b64encode(bomb).decode()
    for src in (url, data_uri):
        error = error_of(render(api, template, variables={"photo": src}), 422)
        assert error["code"] == "limit_exceeded", error
        assert "decompression bomb" in error["message"], error
        assert error["details"]["path"] == "layers[0].src"
    assert stored_renders(tmp_path) == []
    failed = api.get("/renders?status=failed").json()["data"]
    assert [r["error"]["code"] for r in failed] == ["limit_exceeded"] * 2


# ---------------------------------------------------------------- quota

@pytest.mark.parametrize("settings", [{"MONTHLY_QUOTA": 2}])
def test_quota_stops_new_renders_but_not_cached_ones(api):
    template = create(api, HEADLINE)
    for title in ("one", "two"):
        assert render(api, template, variables={"title": title}).status_code == 201
    over = render(api, template, variables={"title": "three"})
    error = error_of(over, 429)
    assert error["code"] == "quota_exceeded"
    assert int(over.headers["Retry-After"]) > 0
    repeat = render(api, template, variables={"title": "one"})
    assert repeat.status_code == 200 and repeat.json()["cached"] is True
    usage = api.get("/me").json()["usage"]
    assert (usage["renders"], usage["quota"], usage["remaining"]) == (2, 2, 0)
    assert len(api.get("/renders").json()["data"]) == 2  # the refused one left no row


def forget_in_process(app) -> None:
    """What a restarted process knows: no snapshots of completed renders, no repeated bodies."""
    for cache in ("rendering.completed", "rendering.bodies"):
        app.extensions.get(cache, {}).clear()


def test_a_render_file_lost_in_a_machine_crash_is_never_served_and_is_made_again(
        api, app, tmp_path, monkeypatch):
    """A render's file is renamed into place before its fsync (which a background thread does);
    a machine crash before that fsync may leave it short. Such a file is refused (404) rather
    than served ``immutable``, and the same request renders it again."""
    import webapp.storage

    template = create(api, HEADLINE)
    made = render(api, template, variables={"title": "Hi"}).json()
    path = tmp_path / "storage" / "renders" / made["key"][:2] / f"{made['key']}.png"
    webapp.storage.flush_pending()
    path.write_bytes(b"")  # the state a crash before the fsync can leave: empty, not durable
    path.chmod(0o600)
    monkeypatch.setattr(webapp.storage, "_boot_id", lambda: b"the-next-boot")
    forget_in_process(app)

    assert api.get(made["url"]).status_code == 404
    again = render(api, template, variables={"title": "Hi"})
    assert again.status_code == 201, again.text  # rendered again, not answered as cached
    assert again.json()["url"] == made["url"]
    assert picture(api, again.json()).size == (160, 80)
    assert api.get("/me").json()["usage"]["renders"] == 2


def test_a_render_whose_file_cannot_be_stored_fails_uncounted_and_works_once_fixed(
        api, tmp_path):
    template = create(api, HEADLINE)
    folder = tmp_path / "storage" / "renders"
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_bytes(b"")  # a file where the renders' folder should be: nothing can be written
    error = error_of(render(api, template, variables={"title": "Hi"}), 503)
    assert error["code"] == "storage_error"
    assert error["message"].startswith("the storage could not keep renders/"), error["message"]
    assert str(tmp_path) not in error["message"]  # the server's folders are not told

    failed = api.get("/renders?status=failed").json()["data"]
    assert [r["error"]["code"] for r in failed] == ["storage_error"]
    assert failed[0]["url"] is None and str(tmp_path) not in failed[0]["error"]["message"]
    assert api.get("/renders?status=completed").json()["data"] == []
    assert api.get("/me").json()["usage"]["renders"] == 0

    folder.unlink()
    again = render(api, template, variables={"title": "Hi"})
    assert again.status_code == 201, again.text
    assert picture(api, again.json()).size == (160, 80)
    assert api.get("/me").json()["usage"]["renders"] == 1


def test_a_stored_file_that_is_not_what_was_recorded_is_rendered_again(api, app, tmp_path):
    template = create(api, HEADLINE)
    made = render(api, template, variables={"title": "Hi"}).json()
    path = tmp_path / "storage" / "renders" / made["key"][:2] / f"{made['key']}.png"
    path.write_bytes(path.read_bytes()[:100])  # shorter than the render recorded
    forget_in_process(app)
    again = render(api, template, variables={"title": "Hi"})
    assert again.status_code == 201 and again.json()["cached"] is False
    assert picture(api, again.json()).size == (160, 80)
