"""Routes outside the API: stored renders (``/r/``), signed URL renders (``/u/``), health,
readiness and metrics, requested as browsers, mail clients and probes do."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote

import pytest
from helpers import error_of, ink, open_image
from samples import HEADLINE

RED = (220, 38, 38)
BLUE = (37, 99, 235)
IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture
def secret(api, make_account) -> str:
    """The workspace's signing secret, as an admin key sees it in GET /me."""
    _, _, admin = make_account(scopes=["admin"])
    me = api.get("/me", token=admin)
    assert me.status_code == 200, me.text
    assert api.get("/me").json()["signing_secret"] is None  # not for other keys
    return me.json()["signing_secret"]


def create(api, content: dict) -> int:
    response = api.post("/templates", json=content)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def signed(secret: str, path: str, query: str) -> str:
    """``path?query&s=<hex HMAC-SHA256 of "path?query">`` as SPEC 6 describes."""
    message = f"{path}?{query}".encode()
    return f"{path}?{query}&s={hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()}"


def render_count(api) -> int:
    return len(api.get("/renders").json()["data"])


# ---------------------------------------------------------------- /r/

def test_stored_renders_are_immutable_files(api):
    template = create(api, HEADLINE)
    made = api.post("/renders", json={"template": template, "variables": {"title": "Hi"},
                                      "format": "jpeg"}).json()
    key = made["key"]
    served = api.get(made["url"], token=None)  # public: no key needed
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "image/jpeg"
    assert served.headers["Cache-Control"] == IMMUTABLE
    assert served.headers["ETag"] == f'"{key}"'
    assert "Vary" not in served.headers  # one picture for every visitor, cookies or not
    assert open_image(served.content).size == (160, 80)

    again = api.get(made["url"], token=None, headers={"If-None-Match": f'"{key}"'})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == f'"{key}"' and again.headers["Cache-Control"] == IMMUTABLE
    other_tag = api.get(made["url"], token=None, headers={"If-None-Match": '"abc"'})
    assert other_tag.status_code == 200 and other_tag.content == served.content

    for path in (f"/r/{'0' * 64}.png", f"/r/{key}.png", f"/r/{key}.webp", f"/r/{key}.exe",
                 "/r/not-a-key.jpg", f"/r/{key[:-1]}.jpg", f"/r/{key.upper()}.jpg",
                 "/r/../../etc/passwd.png"):
        error = error_of(api.get(path, token=None), 404)
        assert error["code"] in ("render_not_found", "not_found"), path
    assert api.get(f"/r/{key}.jpeg", token=None).content == served.content  # jpeg = jpg


# ---------------------------------------------------------------- /u/

def test_signed_urls_render_once_then_come_from_the_cache(api, secret):
    template = create(api, HEADLINE)
    path = f"/u/{template}.png"
    url = signed(secret, path, "title=Hi+there")
    first = api.get(url, token=None)
    assert first.status_code == 200, first.text
    assert first.headers["Content-Type"] == "image/png"
    assert first.headers["Cache-Control"] == "public, max-age=3600"
    image = open_image(first.content)
    assert image.size == (160, 80)
    assert ink(image, RED) > 100 and ink(image, BLUE) > 1000

    renders = api.get("/renders").json()["data"]
    assert len(renders) == 1 and renders[0]["template"] == template
    assert first.headers["ETag"] == f'"{renders[0]["key"]}"'
    assert api.get(renders[0]["url"]).content == first.content  # the same file as /r/

    again = api.get(url, token=None)
    assert again.status_code == 200 and again.content == first.content
    assert render_count(api) == 1  # answered from the cache
    assert api.get("/me").json()["usage"]["renders"] == 1

    # the same variables through the API are the same render
    via_api = api.post("/renders", json={"template": template,
                                         "variables": {"title": "Hi there"}})
    assert via_api.status_code == 200 and via_api.json()["cached"] is True

    options = [("title=Hi&_size=wide", (320, 80)), ("title=Hi&_scale=2", (320, 160)),
               ("_size=wide&_scale=1.5&title=Hi", (480, 120))]
    for query, size in options:
        response = api.get(signed(secret, path, query), token=None)
        assert response.status_code == 200, (query, response.text)
        assert open_image(response.content).size == size, query

    unicode_title = "title=" + quote("Größe ✓")
    jpeg = api.get(signed(secret, f"/u/{template}.jpg", unicode_title), token=None)
    assert jpeg.status_code == 200 and jpeg.headers["Content-Type"] == "image/jpeg"
    assert api.get("/renders?limit=1").json()["data"][0]["format"] == "jpeg"

    bare = f"/u/{template}.png"  # no variables: the signature covers the path alone
    plain = api.get(bare + "?s=" + hmac.new(secret.encode(), bare.encode(),
                                            hashlib.sha256).hexdigest(), token=None)
    assert plain.status_code == 200, plain.text
    assert ink(open_image(plain.content), RED) == 0


def test_signature_rules(api, other_api, secret):
    template = create(api, HEADLINE)
    path = f"/u/{template}.png"
    good = signed(secret, path, "title=Hi")

    wrong = good[:-4] + ("0000" if not good.endswith("0000") else "1111")
    assert error_of(api.get(wrong, token=None), 403)["code"] == "invalid_signature"
    tampered = good.replace("title=Hi", "title=Ha")
    assert error_of(api.get(tampered, token=None), 403)["code"] == "invalid_signature"
    other_secret = signed("0" * 64, path, "title=Hi")
    assert error_of(api.get(other_secret, token=None), 403)["code"] == "invalid_signature"
    unsigned = api.get(f"{path}?title=Hi", token=None)
    assert error_of(unsigned, 403)["code"] == "signature_required"
    assert error_of(api.get(path, token=None), 403)["code"] == "signature_required"

    signature = good.rsplit("&s=", 1)[1]
    for query in (f"s={signature}&title=Hi", f"title=Hi&s={signature}&_scale=2"):
        error = error_of(api.get(f"{path}?{query}", token=None), 400)
        assert "last" in error["message"], query

    for missing in (999_999, 2**31, 10**30):
        response = api.get(signed(secret, f"/u/{missing}.png", "title=Hi"), token=None)
        assert error_of(response, 404)["code"] == "template_not_found"
    theirs = create(other_api, HEADLINE)  # my secret does not sign their templates
    assert error_of(api.get(signed(secret, f"/u/{theirs}.png", "title=Hi"), token=None),
                    403)["code"] == "invalid_signature"
    assert render_count(api) == 0 and render_count(other_api) == 0

    assert api.get(good, token=None).status_code == 200
    public = api.put(f"/templates/{template}", json={**HEADLINE, "public": True})
    assert public.status_code == 200 and public.json()["public"] is True
    opened = api.get(f"{path}?title=Open", token=None)
    assert opened.status_code == 200, opened.text
    assert ink(open_image(opened.content), RED) > 100

    assert api.delete(f"/templates/{template}").status_code == 204
    assert error_of(api.get(f"{path}?title=Open", token=None), 404)["code"] == \
        "template_not_found"


# ---------------------------------------------------------------- operations

def test_health_readiness_and_metrics(api):
    health = api.get("/healthz", token=None)
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    ready = api.get("/readyz", token=None)
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ok", "checks": {
        "database": "ok", "storage": "ok", "redis": "ok"}}
    metrics = api.get("/metrics", token=None)
    assert metrics.status_code == 200
    assert metrics.headers["Content-Type"].startswith("text/plain")
    assert 'pixelmerge_http_requests_total{method="GET",status="200"}' in metrics.text


def test_every_answer_says_how_long_the_app_took(api):
    for response in (api.get("/healthz"), api.get("/me"), api.get("/templates/999999")):
        timing = response.headers["Server-Timing"]
        assert timing.startswith("app;dur=")
        assert 0 <= float(timing.split("dur=")[1]) < 10_000


@pytest.mark.parametrize("settings", [{"PUBLIC_RATE_LIMIT": "3 per minute"}], ids=["public3"])
def test_signed_urls_are_limited_per_client_address(api, secret):
    """/u/ takes no key: its budget is per client address (PUBLIC_RATE_LIMIT), apart from the
    API keys' budgets."""
    template = create(api, HEADLINE)
    url = signed(secret, f"/u/{template}.png", "title=Hi")
    for remaining in (2, 1, 0):
        response = api.get(url, token=None)
        assert response.status_code == 200, response.text
        assert response.headers["X-RateLimit-Limit"] == "3"
        assert response.headers["X-RateLimit-Remaining"] == str(remaining)
    over = api.get(url, token=None)
    error = error_of(over, 429)
    assert error["code"] == "rate_limited" and "3 per 1 minute" in error["message"]
    assert 0 < int(over.headers["Retry-After"]) <= 60
    assert api.get("/me").status_code == 200  # the key's own budget is untouched
