"""The whole render path on an S3-compatible bucket (a local moto server): the stored file, the
/r/ URL streaming from the bucket, cache hits and assets."""

from __future__ import annotations

import uuid

import pytest
from helpers import open_image
from s3server import s3_client, s3_server  # noqa: F401  (fixtures)

CARD = {
    "name": "S3 card", "width": 200, "height": 100, "background": "#1e3a8a",
    "variables": {"title": {"type": "text", "sample": "Hi"}},
    "layers": [{"name": "title", "type": "text", "x": 10, "y": 10, "width": 180, "height": 80,
                "text": "{{ title }}", "size": 40, "color": "#ffffff"}],
}


@pytest.fixture
def settings(s3_server) -> dict:  # noqa: F811
    endpoint, bucket = s3_server
    return {"STORAGE_URL": f"s3://{bucket}/run-{uuid.uuid4().hex[:8]}",
            "S3_ENDPOINT_URL": endpoint}


def test_renders_are_stored_in_the_bucket_and_served_from_it(api, settings, s3_server):  # noqa: F811
    endpoint, bucket = s3_server
    template = api.post("/templates", json=CARD).json()["id"]
    body = {"template": template, "variables": {"title": "Bucket"}}
    made = api.post("/renders", json=body)
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    prefix = settings["STORAGE_URL"].split("/", 3)[3]
    stored = s3_client(endpoint).head_object(Bucket=bucket, Key=f"{prefix}/renders/{key[:2]}/"
                                                                 f"{key}.png")
    assert stored["ContentType"] == "image/png"

    served = api.get(made.json()["url"])
    assert served.status_code == 200
    assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    picture = open_image(served.content)
    assert picture.size == (200, 100)
    assert picture.convert("RGB").getpixel((195, 95)) == (30, 58, 138)

    again = api.post("/renders", json=body)
    assert again.status_code == 200 and again.json()["cached"] is True
    assert api.get("/readyz").json()["checks"]["storage"] == "ok"
    assert api.get(f"/r/{'0' * 64}.png").status_code == 404
