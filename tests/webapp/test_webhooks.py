"""Outgoing webhooks against a recording receiver on loopback, delivered by a real worker:
signatures, retries, 410, per-request webhook_url, the delivery log and redelivery."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
import time
from collections.abc import Iterator

import pytest
from helpers import error_of
from samples import HEADLINE
from test_async_renders import start_worker  # noqa: F401  (fixture)

FAST_RETRIES = {"WEBHOOK_RETRY_INTERVALS": "1,1,1"}


class Receiver:
    """A webhook receiver: records every POST; answers with the next of ``statuses``."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.statuses: list[int] = []
        self.delays: list[float] = []  # seconds to sit on each request before answering
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append({"headers": dict(self.headers), "body": body})
                time.sleep(receiver.delays.pop(0) if receiver.delays else 0)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def wait(self, count: int, timeout: float = 30.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.calls) < count:
            assert time.monotonic() < deadline, f"{len(self.calls)} of {count} deliveries came"
            time.sleep(0.05)
        return self.calls


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.server.shutdown()
    made.server.server_close()


def verify(call: dict, secret: str) -> dict:
    """Checks Pixelmerge-Signature as a receiver would; returns the parsed body."""
    parts = dict(part.split("=", 1) for part in call["headers"]["Pixelmerge-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + call["body"],
                        hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    assert abs(int(parts["t"]) - time.time()) < 120
    return json.loads(call["body"])


def subscribe(api, receiver: Receiver, event: str, **extra) -> dict:
    response = api.post("/hooks", json={"target_url": receiver.url, "event": event, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def test_a_subscriber_gets_each_completed_render_signed(api, receiver, start_worker):  # noqa: F811
    hook = subscribe(api, receiver, "render.completed")
    assert hook["secret"].startswith("whsec_")
    assert api.get("/hooks").json()["data"][0]["secret"] is None  # shown once
    start_worker()
    template = api.post("/templates", json=HEADLINE).json()["id"]
    render = api.post("/renders", json={"template": template,
                                        "variables": {"title": "Hook"}}).json()
    (call,) = receiver.wait(1)
    body = verify(call, hook["secret"])
    assert body["event"] == "render.completed" and body["data"]["id"] == render["id"]
    assert body["data"]["url"] == render["url"]
    log = api.get(f"/hooks/{hook['id']}/deliveries").json()["data"]
    assert log[0]["status"] == "delivered" and len(log[0]["attempts"]) == 1
    assert log[0]["attempts"][0]["status"] == 200


@pytest.mark.parametrize("settings", [FAST_RETRIES], ids=["fast-retries"])
def test_a_refusing_receiver_is_retried_and_410_unsubscribes(api, receiver,
                                                             start_worker):  # noqa: F811
    hook = subscribe(api, receiver, "render.completed")
    receiver.statuses = [500, 200, 410]
    start_worker()
    template = api.post("/templates", json=HEADLINE).json()["id"]
    api.post("/renders", json={"template": template, "variables": {"title": "One"}})
    receiver.wait(2)
    deadline = time.monotonic() + 10
    while (log := api.get(f"/hooks/{hook['id']}/deliveries").json()["data"])[0][
            "status"] != "delivered":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert [a["status"] for a in log[0]["attempts"]] == [500, 200]
    api.post("/renders", json={"template": template, "variables": {"title": "Two"}})
    receiver.wait(3)
    deadline = time.monotonic() + 10
    while api.get("/hooks").json()["data"]:
        assert time.monotonic() < deadline, "410 should remove the subscription"
        time.sleep(0.1)


def test_async_renders_and_batches_call_their_webhook_url(api, make_account, receiver,
                                                         start_worker):  # noqa: F811
    _, _, admin = make_account(scopes=["admin"])
    secret = api.get("/me", token=admin).json()["signing_secret"]
    start_worker()
    template = api.post("/templates", json=HEADLINE).json()["id"]
    queued = api.post("/renders", json={"template": template, "async": True,
                                        "variables": {"title": "Later"},
                                        "webhook_url": receiver.url}).json()
    (call,) = receiver.wait(1)
    body = verify(call, secret)
    assert (body["event"], body["data"]["id"], body["data"]["status"]) == (
        "render.completed", queued["id"], "completed")
    batch = api.post("/batches", json={"template": template, "webhook_url": receiver.url,
                                       "items": [{"variables": {"title": "B"}}]}).json()
    calls = receiver.wait(2)
    body = verify(calls[1], secret)
    assert (body["event"], body["data"]["id"], body["data"]["done"]) == (
        "batch.completed", batch["id"], 1)


def test_a_template_filter_and_refused_targets(api, receiver, start_worker):  # noqa: F811
    template = api.post("/templates", json=HEADLINE).json()["id"]
    other = api.post("/templates", json={**HEADLINE, "name": "Other"}).json()["id"]
    subscribe(api, receiver, "render.completed", template=other)
    start_worker()
    api.post("/renders", json={"template": template, "variables": {"title": "Not this"}})
    api.post("/renders", json={"template": other, "variables": {"title": "This"}})
    calls = receiver.wait(1)
    time.sleep(0.5)
    assert len(calls) == 1 and json.loads(calls[0]["body"])["data"]["template"] == other
    for url in ("http://127.0.0.2:9/hook", "ftp://127.0.0.1/hook", "http://[::1]:9/x"):
        error = error_of(api.post("/hooks", json={"target_url": url,
                                                  "event": "render.completed"}), 422)
        assert error["code"] == "target_refused" and error["details"]["path"] == "target_url"
    assert error_of(api.post("/renders", json={"template": template, "webhook_url": receiver.url}),
                    400)["code"] == "invalid_request"


def test_a_delivery_can_be_delivered_again(api, receiver, start_worker):  # noqa: F811
    hook = subscribe(api, receiver, "render.completed")
    start_worker()
    template = api.post("/templates", json=HEADLINE).json()["id"]
    api.post("/renders", json={"template": template, "variables": {"title": "Again"}})
    receiver.wait(1)
    delivery = api.get(f"/hooks/{hook['id']}/deliveries").json()["data"][0]
    again = api.post(f"/hooks/{hook['id']}/deliveries/{delivery['id']}/redeliver")
    assert again.status_code == 202, again.text
    calls = receiver.wait(2)
    assert calls[0]["body"] == calls[1]["body"]  # the same event, freshly signed
    assert verify(calls[1], hook["secret"])["event"] == "render.completed"
    assert api.post(f"/hooks/{hook['id']}/deliveries/999999/redeliver").status_code == 404


@pytest.mark.parametrize("settings", [{**FAST_RETRIES, "OUTBOUND_TIMEOUT": 0.5}],
                         ids=["fast-retries-short-timeout"])
def test_a_receiver_that_times_out_is_tried_again(api, receiver, start_worker):  # noqa: F811
    hook = subscribe(api, receiver, "render.completed")
    receiver.delays = [3]  # the first delivery is not answered in time
    start_worker()
    template = api.post("/templates", json=HEADLINE).json()["id"]
    api.post("/renders", json={"template": template, "variables": {"title": "Slow"}})
    receiver.wait(2)
    deadline = time.monotonic() + 15
    while (log := api.get(f"/hooks/{hook['id']}/deliveries").json()["data"])[0][
            "status"] != "delivered":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    first, second = log[0]["attempts"]
    assert first["status"] is None and "timed out" in first["error"].lower()
    assert second["status"] == 200
