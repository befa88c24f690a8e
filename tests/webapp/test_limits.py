"""Rate limits per API key, kept in Redis (SPEC 6), and the monthly render quota: new renders
count, cache hits do not, and concurrent renders count exactly (SPEC 5)."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis as redis_client
import requests

from webapp import create_app

LIMIT = 5
PRICE_TEMPLATE = {
    "name": "Price tag", "width": 120, "height": 60, "background": "#ffffff",
    "variables": {"price": {"type": "text", "sample": "9"}},
    "layers": [{"name": "price", "type": "text", "x": 4, "y": 4, "width": 112, "height": 52,
                "text": "{{ price }}", "size": 24, "color": "#000000"}],
}
# quota tests make more requests than LIMIT allows
GENEROUS = pytest.mark.parametrize("settings", [{"RATE_LIMIT": "1000 per minute"}],
                                   ids=["generous"])


@pytest.fixture
def settings() -> dict:
    return {"RATE_LIMIT": f"{LIMIT} per minute"}


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, (response.status_code, response.text[:500])
    body = response.json() if callable(response.json) else response.json  # requests or Flask
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    return body["error"]


def make_template(api) -> int:
    response = api.post("/templates", json=PRICE_TEMPLATE)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def render(api, template_id: int, price, **kwargs):
    return api.post("/renders", json={"template": template_id, "variables": {"price": price}},
                    **kwargs)


def usage(api) -> dict:
    response = api.get("/me")
    assert response.status_code == 200, response.text
    return response.json()["usage"]


# --- rate limits --------------------------------------------------------------------------------

def test_headers_count_down_and_the_request_over_the_limit_is_429(api):
    began = time.time()
    for remaining in range(LIMIT - 1, -1, -1):
        response = api.get("/me")
        answered = time.time()
        assert response.status_code == 200, response.text
        assert response.headers["X-RateLimit-Limit"] == str(LIMIT)
        assert response.headers["X-RateLimit-Remaining"] == str(remaining)
        reset = int(response.headers["X-RateLimit-Reset"])
        # when the window ends, as a Unix time: the window opened with the first request (not
        # before the test began) and lasts a minute (+1 s: Redis counts TTLs in whole seconds)
        assert began - 1 <= reset <= answered + 61
    response = api.get("/me")
    error = assert_error(response, 429, "rate_limited")
    assert f"{LIMIT} per 1 minute" in error["message"]
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert response.headers["X-RateLimit-Limit"] == str(LIMIT)
    assert response.headers["X-RateLimit-Remaining"] == "0"


@pytest.mark.parametrize("settings", [{"RATE_LIMIT": "20 per minute"}], ids=["20"])
def test_a_key_well_below_its_limit_is_still_counted_exactly(api):
    """Below half the limit a request does not wait for its count (read when the answer is
    made): the count, the headers and the refusal stay exact."""
    began = time.time()
    resets = set()
    for remaining in range(19, -1, -1):
        response = api.get("/me")
        assert response.status_code == 200, response.text
        assert response.headers["X-RateLimit-Remaining"] == str(remaining)
        resets.add(int(response.headers["X-RateLimit-Reset"]))
    assert max(resets) - min(resets) <= 1  # one window: its end does not move with each request
    assert began - 1 <= min(resets) <= max(resets) <= time.time() + 61
    assert_error(api.get("/me"), 429, "rate_limited")


@pytest.mark.parametrize("settings", [{"RATE_LIMIT": "30 per minute"}], ids=["30"])
def test_concurrent_requests_pass_the_limit_by_at_most_one_per_connection(api):
    connections = 6

    def many(_: int) -> list[int]:
        with requests.Session() as session:
            return [session.get(api.url("/me"), timeout=30,
                                headers={"Authorization": f"Bearer {api.token}"}).status_code
                    for _ in range(10)]

    with ThreadPoolExecutor(connections) as pool:
        statuses = [status for batch in pool.map(many, range(connections)) for status in batch]
    assert set(statuses) <= {200, 429}
    assert 30 <= statuses.count(200) <= 30 + connections, statuses.count(200)
    assert_error(api.get("/me"), 429, "rate_limited")


def test_every_operation_shares_the_keys_budget(api):
    for _ in range(LIMIT):
        assert api.get("/templates").status_code == 200
    assert_error(api.get("/me"), 429, "rate_limited")
    assert_error(api.post("/renders", json={"template": 1}), 429, "rate_limited")


def test_limits_are_per_key(api, make_account):
    _, _, other_key = make_account("second@example.com", scopes=["render"])
    _, _, same_user_key = make_account(scopes=["render"])
    for _ in range(LIMIT):
        assert api.get("/me").status_code == 200
    assert_error(api.get("/me"), 429, "rate_limited")
    for token in (other_key, same_user_key):
        response = api.get("/me", token=token)
        assert response.status_code == 200, response.text
        assert response.headers["X-RateLimit-Remaining"] == str(LIMIT - 1)


def test_counts_live_in_redis_and_are_shared_by_every_process(api, app_config, redis_url):
    for _ in range(LIMIT - 1):
        assert api.get("/me").status_code == 200
    assert redis_client.Redis.from_url(redis_url).dbsize() > 0
    second = create_app(app_config)  # another web process on the same Redis and database
    try:
        client = second.test_client()
        headers = {"Authorization": f"Bearer {api.token}"}
        response = client.get("/api/v1/me", headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["X-RateLimit-Remaining"] == "0"
        response = client.get("/api/v1/me", headers=headers)
        assert_error(response, 429, "rate_limited")
        assert "Retry-After" in response.headers
    finally:
        with second.app_context():
            from webapp.extensions import db

            db.session.remove()
            db.engine.dispose()
    assert_error(api.get("/me"), 429, "rate_limited")  # and the first process sees it too


def test_counting_survives_a_redis_that_forgot_the_script(api, redis_url):
    """The counter's script is called by its digest; a Redis restarted or flushed of scripts
    answers NOSCRIPT, and the count is made all the same (in Redis, not in memory)."""
    assert api.get("/me").headers["X-RateLimit-Remaining"] == str(LIMIT - 1)
    redis_client.Redis.from_url(redis_url).script_flush()
    assert api.get("/me").headers["X-RateLimit-Remaining"] == str(LIMIT - 2)
    from webapp.models.apikey import digest

    counters = redis_client.Redis.from_url(redis_url)
    mine = counters.keys(f"*{digest(api.token)[:32]}*")
    assert [int(counters.get(key)) for key in mine] == [2]


# --- the monthly quota --------------------------------------------------------------------------

@GENEROUS
def test_new_renders_count_and_cache_hits_do_not(api):
    template_id = make_template(api)
    assert usage(api)["renders"] == 0
    first = render(api, template_id, "10")
    assert first.status_code == 201, first.text
    assert first.json()["cached"] is False
    assert usage(api) | {"month": None} == {"month": None, "renders": 1, "quota": 10_000,
                                            "remaining": 9_999}
    again = render(api, template_id, "10")
    assert again.status_code == 200, again.text
    assert again.json()["cached"] is True and again.json()["key"] == first.json()["key"]
    assert usage(api)["renders"] == 1
    assert render(api, template_id, "11").status_code == 201
    assert usage(api)["renders"] == 2


@pytest.mark.parametrize("settings", [{"RATE_LIMIT": "1000 per minute",
                                            "MONTHLY_QUOTA": 2}], ids=["quota2"])
def test_quota_reached_is_429_but_cached_renders_still_served(api):
    template_id = make_template(api)
    assert render(api, template_id, "1").status_code == 201
    assert render(api, template_id, "2").status_code == 201
    assert usage(api)["remaining"] == 0
    response = render(api, template_id, "3")
    error = assert_error(response, 429, "quota_exceeded")
    assert "2 renders" in error["message"]
    assert error["details"]["quota"] == 2
    assert int(response.headers["Retry-After"]) > 0
    cached = render(api, template_id, "1")
    assert cached.status_code == 200 and cached.json()["cached"] is True
    assert usage(api)["renders"] == 2


@pytest.mark.parametrize("settings", [{"RATE_LIMIT": "1000 per minute",
                                            "MONTHLY_QUOTA": 0}], ids=["unlimited"])
def test_quota_zero_means_unlimited(api):
    template_id = make_template(api)
    assert usage(api) | {"month": None} == {"month": None, "renders": 0, "quota": None,
                                            "remaining": None}
    for price in range(3):
        assert render(api, template_id, str(price)).status_code == 201
    assert usage(api)["renders"] == 3
    assert usage(api)["quota"] is None


@GENEROUS
def test_concurrent_renders_count_exactly(api):
    template_id = make_template(api)
    assert render(api, template_id, "warm-up").status_code == 201  # fonts and template loaded
    threads = 8

    def one(i: int) -> requests.Response:  # a connection of its own per thread
        return requests.post(api.url("/renders"), timeout=60,
                             headers={"Authorization": f"Bearer {api.token}"},
                             json={"template": template_id, "variables": {"price": f"{i}.99"}})

    with ThreadPoolExecutor(threads) as pool:
        responses = list(pool.map(one, range(threads)))
    assert [r.status_code for r in responses] == [201] * threads, [
        r.text[:300] for r in responses if r.status_code != 201]
    assert len({r.json()["key"] for r in responses}) == threads
    assert usage(api)["renders"] == threads + 1



@pytest.mark.parametrize("settings", [{"RATE_LIMIT": "1000 per minute",
                                       "MONTHLY_QUOTA": 3}], ids=["quota3"])
def test_concurrent_renders_never_overshoot_the_quota(api):
    template_id = make_template(api)
    assert render(api, template_id, "warm-up").status_code == 201  # 1 of 3 used

    def one(i: int) -> requests.Response:
        return requests.post(api.url("/renders"), timeout=60,
                             headers={"Authorization": f"Bearer {api.token}"},
                             json={"template": template_id, "variables": {"price": f"{i}.5"}})

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(r.status_code for r in pool.map(one, range(8)))
    assert statuses == [201, 201] + [429] * 6
    assert usage(api)["renders"] == 3


@pytest.mark.parametrize("settings", [{"RATE_LIMIT": "1000 per minute",
                                       "MONTHLY_QUOTA": 5}], ids=["quota5"])
def test_failed_renders_do_not_use_the_quota(api):
    template_id = make_template(api)
    # the font is only looked up while rendering, after the render was counted: it must be
    # given back
    broken = api.post("/renders", json={"template": template_id,
                                        "layers": {"price": {"font": "Nope Sans"}}})
    assert broken.status_code == 422, broken.text
    assert broken.json()["error"]["details"]["path"] == "layers[0].font"
    assert usage(api)["renders"] == 0
    assert render(api, template_id, "7").status_code == 201
    assert usage(api)["renders"] == 1


def test_without_redis_the_limit_is_counted_in_memory(api, app_config, caplog):
    """Redis unreachable must not take the API down: this process counts in memory (and says
    so in its log) until Redis answers again."""
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cut_off = create_app({**app_config, "REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    try:
        client = cut_off.test_client()
        headers = {"Authorization": f"Bearer {api.token}"}
        for remaining in range(LIMIT - 1, -1, -1):
            response = client.get("/api/v1/me", headers=headers)
            assert response.status_code == 200, response.text
            assert response.headers["X-RateLimit-Remaining"] == str(remaining)
        response = client.get("/api/v1/me", headers=headers)
        assert_error(response, 429, "rate_limited")
        assert 0 < int(response.headers["Retry-After"]) <= 60
        assert "rate-limit storage unreachable" in caplog.text
    finally:
        with cut_off.app_context():
            from webapp.extensions import db

            db.session.remove()
            db.engine.dispose()


def test_a_request_over_the_limit_is_refused_before_anything_else_is_checked(
        api, make_account):
    """Past the limit nothing is read or changed: a malformed body or an unknown id still
    answer 429, and nothing is created."""
    _, _, other_key = make_account(scopes=["templates:read"])  # same workspace, own budget
    before = api.get("/templates", token=other_key).json()["data"]
    for _ in range(LIMIT):
        assert api.get("/templates").status_code == 200
    assert_error(api.post("/templates", data=b"{not json",
                          headers={"Content-Type": "application/json"}), 429, "rate_limited")
    assert_error(api.get("/templates/999999"), 429, "rate_limited")
    assert_error(api.post("/templates", json=PRICE_TEMPLATE), 429, "rate_limited")
    assert api.get("/templates", token=other_key).json()["data"] == before
