"""``"async": true`` renders: 202 with a pending render, completed by a real RQ worker process
(`pixelmerge worker`) on the test's Redis, database and storage."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator

import pytest
from helpers import error_of, ink, open_image, picture_site, png_data_uri
from PIL import Image
from samples import HEADLINE

RED = (220, 38, 38)


def worker_env(config: dict) -> dict:
    """The test app's configuration, as the environment a worker process reads it from."""
    from pathlib import Path

    from webapp.config import ENV_NAMES, defaults

    known = defaults(Path(config["DATA_DIR"]))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIXELMERGE_", *ENV_NAMES))}
    for name, value in config.items():
        if value is None or not isinstance(value, str | int | float):
            continue
        if name in ENV_NAMES:
            env[name] = str(value)
        elif name in known:
            env[f"PIXELMERGE_{name}"] = str(value)
    env["PIXELMERGE_DATA"] = config["DATA_DIR"]
    return env


@pytest.fixture
def start_worker(app, app_config, tmp_path) -> Iterator:
    processes: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        with open(tmp_path / f"worker-{len(processes)}.log", "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "webapp.cli", "worker"],
                env=worker_env(app_config), stdout=log, stderr=subprocess.STDOUT)
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=20)


def wait_for(api, render_id: int, status: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        render = api.get(f"/renders/{render_id}").json()
        if render["status"] == status:
            return render
        time.sleep(0.1)
    raise AssertionError(f"render {render_id} is still {render['status']} after {timeout} s")


def test_an_async_render_is_pending_then_completed_by_a_worker(api, start_worker):
    template = api.post("/templates", json=HEADLINE).json()["id"]
    body = {"template": template, "variables": {"title": "Later"}, "async": True}
    queued = api.post("/renders", json=body)
    assert queued.status_code == 202, queued.text
    render = queued.json()
    assert (render["status"], render["url"], render["cached"]) == ("pending", None, False)
    again = api.post("/renders", json=body)  # the same request joins the pending render
    assert again.status_code == 202 and again.json()["id"] == render["id"]

    start_worker()
    done = wait_for(api, render["id"], "completed")
    assert done["key"] == render["key"] and done["url"]
    picture = open_image(api.get(done["url"]).content)
    assert picture.size == (160, 80) and ink(picture, RED) > 100

    repeat = api.post("/renders", json=body)
    assert repeat.status_code == 200 and repeat.json()["cached"] is True
    assert repeat.json()["id"] == render["id"]
    assert api.get("/me").json()["usage"]["renders"] == 1


def test_an_async_render_that_fails_is_failed_with_its_reason_and_costs_nothing(
        api, start_worker):
    template = api.post("/templates", json=HEADLINE).json()["id"]
    queued = api.post("/renders", json={"template": template, "async": True,
                                        "layers": {"title": {"font": "Nope Sans"}}})
    assert queued.status_code == 202, queued.text
    start_worker()
    failed = wait_for(api, queued.json()["id"], "failed")
    assert failed["error"]["path"] == "layers[1].font"
    assert "unknown font 'Nope Sans'" in failed["error"]["message"]
    assert api.get("/me").json()["usage"]["renders"] == 0


@pytest.mark.parametrize("settings", [{"REDIS_URL": None}], ids=["no-redis"])
def test_without_redis_async_renders_are_refused_clearly(api):
    template = api.post("/templates", json=HEADLINE).json()["id"]
    error = error_of(api.post("/renders", json={"template": template, "async": True}), 503)
    assert error["code"] == "queue_unavailable" and "REDIS_URL" in error["message"]
    assert api.post("/renders", json={"template": template}).status_code == 201


PHOTO = {
    "name": "Slow photo", "width": 80, "height": 40, "background": "#ffffff",
    "variables": {"photo": {"type": "image"}},
    "layers": [{"name": "photo", "type": "image", "x": 0, "y": 0, "width": 80, "height": 40,
                "src": "{{ photo }}", "fit": "fill"}],
}


@pytest.fixture
def slow_site() -> Iterator[str]:
    """A picture on loopback (allowlisted in the tests) that takes two seconds to arrive."""
    with picture_site((37, 99, 235), delay=2) as url:
        yield url


def sweep(app) -> int:
    """One round of the scheduler (`pixelmerge scheduler`), without its grace period."""
    from webapp.tasks.sweep import sweep as scheduler_round

    with app.app_context():
        return scheduler_round(grace_seconds=0)


def test_a_render_whose_job_was_lost_is_queued_again(api, app, redis_url, start_worker):
    import redis

    template = api.post("/templates", json=HEADLINE).json()["id"]
    queued = api.post("/renders", json={"template": template, "async": True,
                                        "variables": {"title": "Lost"}}).json()
    redis.Redis.from_url(redis_url).flushdb()  # a Redis restart without persistence
    assert sweep(app) == 1
    assert sweep(app) == 0  # queued now: not again
    start_worker()
    done = wait_for(api, queued["id"], "completed")
    assert api.get(done["url"]).status_code == 200
    assert api.get("/me").json()["usage"]["renders"] == 1


@pytest.mark.parametrize("settings", [{"JOB_STALE_SECONDS": 1}], ids=["stale-after-1s"])
def test_a_worker_killed_mid_render_loses_nothing(api, app, start_worker, slow_site):
    import signal

    template = api.post("/templates", json=PHOTO).json()["id"]
    queued = api.post("/renders", json={"template": template, "async": True,
                                        "variables": {"photo": slow_site}}).json()
    doomed = start_worker()
    wait_for(api, queued["id"], "rendering")
    doomed.send_signal(signal.SIGKILL)  # mid-job: the picture is still on its way
    doomed.wait(timeout=10)
    time.sleep(1.2)  # the started job's heartbeat goes stale
    assert sweep(app) == 1
    start_worker()
    done = wait_for(api, queued["id"], "completed")
    picture = open_image(api.get(done["url"]).content)
    assert picture.convert("RGB").getpixel((40, 20)) == (37, 99, 235)
    renders = api.get("/renders").json()["data"]
    assert [r["id"] for r in renders] == [queued["id"]]  # rendered exactly once
    assert api.get("/me").json()["usage"]["renders"] == 1


@pytest.mark.parametrize("settings", [{"SYNC_TIMEOUT": 0.5}], ids=["sync-limit-0.5s"])
def test_a_synchronous_render_past_the_sync_limit_answers_202_and_completes(api, slow_site):
    template = api.post("/templates", json=PHOTO).json()["id"]
    started = time.monotonic()
    answer = api.post("/renders", json={"template": template,
                                        "variables": {"photo": slow_site}})
    assert answer.status_code == 202, answer.text
    assert time.monotonic() - started < 1.9  # the picture takes 2 s: we did not wait for it
    render = answer.json()
    assert (render["status"], render["url"]) == ("rendering", None)
    done = wait_for(api, render["id"], "completed")  # no worker: this process finishes it
    picture = open_image(api.get(done["url"]).content)
    assert picture.convert("RGB").getpixel((40, 20)) == (37, 99, 235)
    assert api.get("/me").json()["usage"]["renders"] == 1
    repeat = api.post("/renders", json={"template": template, "variables": {"photo": slow_site}})
    assert repeat.status_code == 200 and repeat.json()["cached"] is True


@pytest.mark.parametrize("settings", [{"SYNC_TIMEOUT": 0.5}], ids=["sync-limit-0.5s"])
def test_a_quick_template_whose_request_brings_a_slow_picture_still_answers_202(
        api, slow_site):
    """Renders of a kind that were quick and fetched nothing run in the request's thread;
    one that turns out to wait for the network must still be answered at the limit."""
    template = api.post("/templates", json=PHOTO).json()["id"]
    for shade in range(10):  # quick renders of this kind, with pictures given inline
        picture = png_data_uri(Image.new("RGB", (8, 8), (shade * 20, 0, 0)))
        answer = api.post("/renders", json={"template": template,
                                            "variables": {"photo": picture}})
        assert answer.status_code == 201, answer.text
        made = open_image(api.get(answer.json()["url"]).content)
        assert made.convert("RGB").getpixel((40, 20)) == (shade * 20, 0, 0)

    started = time.monotonic()
    answer = api.post("/renders", json={"template": template, "variables": {"photo": slow_site}})
    assert answer.status_code == 202, answer.text
    assert time.monotonic() - started < 1.9  # the picture takes 2 s: we did not wait for it
    done = wait_for(api, answer.json()["id"], "completed")
    made = open_image(api.get(done["url"]).content)
    assert made.convert("RGB").getpixel((40, 20)) == (37, 99, 235)
    assert api.get("/me").json()["usage"]["renders"] == 11


BADGE = {"kind": "html", "name": "Badge", "width": 40, "height": 40,
         "html": '<img src="{{ picture }}" style="display:block;width:40px;height:40px">'}


def svg_uri(inner: str) -> str:
    return "data:image/svg+xml," + urllib.parse.quote(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8">{inner}</svg>')


def test_a_picture_that_asks_for_the_network_from_inside_an_svg_is_rendered(api):
    """A render in the request's thread that is about to fetch starts again in a render
    thread, even where a library (WeasyPrint drawing an SVG) catches the stop itself."""
    template = api.post("/templates", json=BADGE).json()["id"]
    for shade in range(9):  # quick renders of this kind that need nothing from the network
        plain = svg_uri(f'<rect width="8" height="8" fill="rgb({shade * 25},0,0)"/>')
        answer = api.post("/renders", json={"template": template,
                                            "variables": {"picture": plain}})
        assert answer.status_code == 201, answer.text
    with picture_site((37, 99, 235), delay=0) as site:
        nested = svg_uri(f'<image href="{site}" width="8" height="8"/>')
        answer = api.post("/renders", json={"template": template,
                                            "variables": {"picture": nested}})
    assert answer.status_code == 201, answer.text
    made = open_image(api.get(answer.json()["url"]).content).convert("RGB")
    assert made.getpixel((20, 20)) == (37, 99, 235)
