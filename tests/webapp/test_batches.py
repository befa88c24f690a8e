"""Batches end to end with a real worker: progress, items that fail alone, merged PDF and ZIP,
CSV uploads, limits."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterator

import pytest
from helpers import error_of, open_image, picture_site
from test_async_renders import start_worker  # noqa: F401  (fixture)

from renderer.pdf import pdf_text

PRICE = {
    "name": "Price tag", "width": 120, "height": 60, "background": "#ffffff",
    "variables": {"price": {"type": "number"}, "sku": {"type": "text"}},
    "layers": [{"name": "price", "type": "text", "x": 4, "y": 4, "width": 112, "height": 52,
                "text": "{{ sku }} {{ price | currency }}", "size": 20, "color": "#000000"}],
}


def wait_done(api, batch_id: int, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = api.get(f"/batches/{batch_id}").json()
        if batch["status"] == "completed":
            return batch
        time.sleep(0.2)
    raise AssertionError(f"batch {batch_id} is {batch['status']} ({batch['done']} done, "
                         f"{batch['failed']} failed of {batch['total']})")


def items(count: int, bad: int | None = None) -> list[dict]:
    return [{"variables": {"sku": f"A-{i}", "price": "abc" if i == bad else str(10 + i)},
             "metadata": {"row": i + 2}} for i in range(count)]


def test_a_batch_renders_every_item_and_zips_them(api, start_worker):  # noqa: F811
    template = api.post("/templates", json=PRICE).json()["id"]
    created = api.post("/batches", json={"template": template, "items": items(30, bad=7),
                                         "merge": "zip", "metadata": {"run": "x"}})
    assert created.status_code == 202, created.text
    assert (created.json()["total"], created.json()["status"]) == (30, "pending")
    start_worker()
    batch = wait_done(api, created.json()["id"])
    assert (batch["done"], batch["failed"]) == (29, 1)
    bad = batch["items"][7]
    assert bad["status"] == "failed" and bad["error"]["path"] == "variables.price"
    assert "'abc' is not a number" in bad["error"]["message"]
    assert bad["metadata"] == {"row": 9} and bad["url"] is None
    good = batch["items"][0]
    assert good["status"] == "completed"
    assert open_image(api.get(good["url"]).content).size == (120, 60)
    archive = zipfile.ZipFile(io.BytesIO(api.get(batch["merged_url"]).content))
    names = archive.namelist()
    assert len(names) == 29 and names[0] == "00001.png" and "00008.png" not in names
    assert api.get("/me").json()["usage"]["renders"] == 29


def test_a_batch_merged_into_one_pdf_has_a_page_per_item(api, start_worker):  # noqa: F811
    template = api.post("/templates", json=PRICE).json()["id"]
    created = api.post("/batches", json={"template": template, "items": items(3),
                                         "merge": "pdf"})
    start_worker()
    batch = wait_done(api, created.json()["id"])
    assert batch["format"] == "pdf"
    pages = pdf_text(api.get(batch["merged_url"]).content)
    assert [page.strip() for page in pages] == ["A-0 $10.00", "A-1 $11.00", "A-2 $12.00"]


def test_a_csv_upload_is_a_batch(api, start_worker):  # noqa: F811
    template = api.post("/templates", json=PRICE).json()["id"]
    csv = "sku,price\nB-1,5\nB-2,6\n"
    created = api.post("/batches", data={"template": str(template), "format": "jpeg"},
                       files={"file": ("rows.csv", csv.encode(), "text/csv")})
    assert created.status_code == 202, created.text
    start_worker()
    batch = wait_done(api, created.json()["id"])
    assert (batch["done"], batch["format"]) == (2, "jpeg")
    assert batch["items"][1]["url"].endswith(".jpg")


@pytest.mark.parametrize("settings", [{"MAX_BATCH_ITEMS": 3}], ids=["limit3"])
def test_empty_oversized_and_foreign_batches_are_refused(api, other_api):
    template = api.post("/templates", json=PRICE).json()["id"]
    assert error_of(api.post("/batches", json={"template": template, "items": []}),
                    400)["code"] == "empty_batch"
    too_many = error_of(api.post("/batches", json={"template": template, "items": items(4)}),
                        413)
    assert too_many["code"] == "batch_too_large" and "limit is 3" in too_many["message"]
    assert error_of(other_api.post("/batches", json={"template": template, "items": items(1)}),
                    404)["code"] == "template_not_found"
    mine = api.post("/batches", json={"template": template, "items": items(1)}).json()
    assert other_api.get(f"/batches/{mine['id']}").status_code == 404


def test_a_csv_that_cannot_be_read_is_a_clear_400(api):
    template = api.post("/templates", json=PRICE).json()["id"]
    broken = b"sku,price\n" + b"x" * 200_000 + b",5\n"  # a cell past the CSV reader's limit
    response = api.post("/batches", data={"template": str(template)},
                        files={"file": ("rows.csv", broken, "text/csv")})
    error = error_of(response, 400)
    assert error["code"] == "invalid_csv" and error["message"].startswith("file: ")


@pytest.fixture
def drip_site() -> Iterator[str]:
    """Pictures on loopback (allowlisted in the tests) that take 0.3 s each."""
    with picture_site((22, 163, 74), delay=0.3) as url:
        yield url


@pytest.mark.parametrize("settings", [{"JOB_STALE_SECONDS": 1}], ids=["stale-after-1s"])
def test_a_worker_killed_mid_batch_loses_nothing_and_renders_nothing_twice(
        api, app, start_worker, drip_site):  # noqa: F811
    import signal

    from test_async_renders import PHOTO, sweep

    template = api.post("/templates", json=PHOTO).json()["id"]
    rows = [{"variables": {"photo": f"{drip_site}?i={i}"}} for i in range(30)]
    batch_id = api.post("/batches", json={"template": template, "items": rows}).json()["id"]
    doomed = start_worker()
    deadline = time.monotonic() + 30
    while api.get(f"/batches/{batch_id}").json()["done"] < 3:  # well into the first chunk
        assert time.monotonic() < deadline, "the first worker never got going"
        time.sleep(0.05)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=10)
    time.sleep(1.2)  # its started job goes stale
    assert sweep(app) >= 1
    start_worker()
    batch = wait_done(api, batch_id)
    assert (batch["done"], batch["failed"]) == (30, 0)
    renders = [item["render"] for item in batch["items"]]
    assert len(set(renders)) == 30  # every item rendered exactly once
    completed = [r for r in api.get("/renders?limit=100").json()["data"]
                 if r["status"] == "completed"]
    assert sorted(r["id"] for r in completed) == sorted(renders)
    sweep(app)  # the render cut off by the kill is failed and its quota given back
    assert api.get("/me").json()["usage"]["renders"] == 30


def test_a_batch_whose_jobs_were_lost_in_a_redis_restart_completes(api, app, redis_url,
                                                                  start_worker):  # noqa: F811
    import redis
    from test_async_renders import sweep

    template = api.post("/templates", json=PRICE).json()["id"]
    batch_id = api.post("/batches", json={"template": template, "items": items(60),
                                          "merge": "zip"}).json()["id"]
    redis.Redis.from_url(redis_url).flushdb()  # all three chunk jobs are gone
    assert sweep(app) == 3
    start_worker()
    batch = wait_done(api, batch_id)
    assert (batch["done"], batch["failed"]) == (60, 0)
    assert len({item["render"] for item in batch["items"]}) == 60
    assert len(zipfile.ZipFile(io.BytesIO(api.get(batch["merged_url"]).content)).namelist()) == 60
    assert api.get("/me").json()["usage"]["renders"] == 60


@pytest.mark.parametrize("settings", [{"MONTHLY_QUOTA": 12}], ids=["quota12"])
def test_a_chunk_bigger_than_the_quota_left_renders_up_to_the_quota_exactly(
        api, start_worker):  # noqa: F811
    template = api.post("/templates", json=PRICE).json()["id"]
    assert api.post("/renders", json={"template": template,
                                      "variables": {"sku": "X", "price": 1}}).status_code == 201
    created = api.post("/batches", json={"template": template, "items": items(20)}).json()
    start_worker()
    batch = wait_done(api, created["id"])
    assert (batch["done"], batch["failed"]) == (11, 9)  # one chunk: 11 fit, in item order
    assert [item["status"] for item in batch["items"]] == ["completed"] * 11 + ["failed"] * 9
    assert {item["error"]["code"] for item in batch["items"][11:]} == {"quota_exceeded"}
    assert api.get("/me").json()["usage"]["renders"] == 12  # never more than the quota


def test_rows_with_the_same_data_are_rendered_and_counted_once(api, start_worker):  # noqa: F811
    template = api.post("/templates", json=PRICE).json()["id"]
    rows = items(3) + items(3)  # each row twice, in one chunk
    created = api.post("/batches", json={"template": template, "items": rows}).json()
    start_worker()
    batch = wait_done(api, created["id"])
    assert (batch["done"], batch["failed"]) == (6, 0)
    first, second = batch["items"][:3], batch["items"][3:]
    assert [i["render"] for i in first] == [i["render"] for i in second]
    assert [i["url"] for i in first] == [i["url"] for i in second]
    assert [i["metadata"] for i in second] == [{"row": 2}, {"row": 3}, {"row": 4}]
    assert api.get("/me").json()["usage"]["renders"] == 3
