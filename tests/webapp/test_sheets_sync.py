"""Google Sheets bindings end to end: the real gspread client in the product, against the Sheets
emulator over HTTP, with real workers. What a marketer would check: the cells of the sheet."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from apiclient import Api
from helpers import error_of, open_image
from samples import PRICE_CARD as CARD
from test_async_renders import start_worker  # noqa: F401  (fixture)

HEADER = ["SKU", "Title", "Price", "Notes"]
OUTPUT = {"url_column": "Image", "status_column": "Status", "thumbnail_column": "Preview"}


@pytest.fixture
def settings(request, emulator, tmp_path) -> dict:
    """The app on the emulator; ``indirect`` parametrization with "oauth" adds sign-in."""
    key = emulator.write_credentials(tmp_path / "service-account.json")
    config = {"GOOGLE_SHEETS_API_URL": emulator.url, "GOOGLE_SERVICE_ACCOUNT_FILE": str(key),
              "SHEETS_BACKOFF": 0.01, "SHEETS_RETRIES": 3}
    if getattr(request, "param", None) == "oauth":
        config.update({"GOOGLE_CLIENT_ID": "pixelmerge-test", "GOOGLE_CLIENT_SECRET": "secret",
                       "GOOGLE_OPENID_CONFIG_URL": emulator.discovery_url})
    return config


@pytest.fixture
def sapi(app, live, make_account) -> Api:
    _, _, token = make_account(scopes=("render", "templates:read", "templates:write",
                                       "sources"))
    return Api(live.url, token)


def sheet(emulator, rows: list[list], **kwargs) -> dict:
    return emulator.create_spreadsheet(sheets={"Sheet1": [HEADER, *rows]}, **kwargs)


def bind(api: Api, spreadsheet: dict, **binding) -> dict:
    source = api.post("/sources", json={"type": "google_sheets", "name": "Catalogue",
                                        "config": {"spreadsheet": spreadsheet["url"]}})
    assert source.status_code == 201, source.text
    template = api.post("/templates", json=CARD).json()["id"]
    answer = api.post("/bindings", json={"template": template, "source": source.json()["id"],
                                         "output": OUTPUT, "poll_seconds": 0, **binding})
    assert answer.status_code == 201, answer.text
    return answer.json()


def sync(api: Api, binding: dict, timeout: float = 60.0) -> dict:
    run = api.post(f"/bindings/{binding['id']}/sync")
    assert run.status_code == 202, run.text
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = api.get(f"/bindings/{binding['id']}/runs").json()["data"]
        if runs[0]["id"] == run.json()["id"] and runs[0]["status"] in ("completed", "failed"):
            return runs[0]
        time.sleep(0.2)
    raise AssertionError(f"the sync did not end: {runs[0]}")


def url_of(api: Api, template: int, title: str, price: str) -> str:
    """The URL a render of these values has (a cache hit once the sync rendered it)."""
    answer = api.post("/renders", json={"template": template,
                                        "variables": {"title": title, "price": price}})
    assert answer.status_code in (200, 201), answer.text
    return answer.json()["url"]


def test_a_sync_fills_urls_statuses_and_thumbnails_and_nothing_else(sapi, emulator,
                                                                    start_worker):  # noqa: F811
    rows = [["A-1", "Mug", "12", "keep"], [], ["A-2", "Tee", "abc", ""],
            ["A-3", "Cap", {"value": 9.5, "formatted": "$9.50"}, {"formula": "=C4*2",
                                                                  "value": 19}]]
    spreadsheet = sheet(emulator, rows)
    binding = bind(sapi, spreadsheet)
    assert binding["mapping"] == {"title": "Title", "price": "Price"}  # auto-mapped
    assert binding["inbound_url"].startswith(sapi.base + "/hooks/in/")
    before = emulator.cells(spreadsheet["id"])
    emulator.clear_requests()
    start_worker()
    run = sync(sapi, binding)
    assert run["status"] == "completed", run["error"]
    assert (run["rows_seen"], run["rows_skipped"], run["to_render"], run["rendered"],
            run["errors"]) == (4, 1, 3, 2, 1)
    after = emulator.cells(spreadsheet["id"])
    values, formulas = after["values"], after["formulas"]
    assert values[0] == [*HEADER, "Image", "Status", "Preview"]
    mug = values[1]
    assert mug[:4] == ["A-1", "Mug", "12", "keep"] and mug[5] == "done"
    assert formulas[1][6] == f'=IMAGE("{mug[4]}")'
    assert open_image(sapi.get(mug[4]).content).size == (160, 80)
    assert values[2] == []  # the blank row is skipped and left blank
    assert values[3][4] == "" and values[3][5].startswith("error: ")
    assert "'abc' is not a number" in values[3][5]
    assert values[4][5] == "done" and formulas[4][3] == "=C4*2"  # formulas stay formulas
    for old, new in zip(before["cells"], after["cells"], strict=False):
        assert [*new, *[None] * 4][:4] == [*old, *[None] * 4][:4]  # nothing else changed
    # read (metadata, values), "queued" statuses, then one round: read, text, formulas
    assert run["requests"] == len(emulator.requests()) == 6


def test_a_resync_renders_only_the_edited_rows(sapi, emulator, start_worker):  # noqa: F811
    spreadsheet = sheet(emulator, [[f"S-{i}", f"Shirt {i}", str(10 + i), ""]
                                   for i in range(30)])
    binding = bind(sapi, spreadsheet, key_column="SKU")
    start_worker()
    first = sync(sapi, binding)
    assert (first["status"], first["rendered"]) == ("completed", 30), first["error"]
    urls = [row[4] for row in emulator.values(spreadsheet["id"])[1:]]
    emulator.set_cells(spreadsheet["id"], "Sheet1!B5", [["Shirt edited"]])
    emulator.set_cells(spreadsheet["id"], "Sheet1!C20", [["99"]])
    again = sync(sapi, binding)
    assert (again["rows_current"], again["to_render"], again["rendered"]) == (28, 2, 2)
    now = [row[4] for row in emulator.values(spreadsheet["id"])[1:]]
    changed = [i for i, (a, b) in enumerate(zip(urls, now, strict=True)) if a != b]
    assert changed == [3, 18]
    quiet = sync(sapi, binding)
    assert (quiet["to_render"], quiet["written"], quiet["requests"]) == (0, 0, 2)


def test_rows_moved_mid_sync_never_get_another_rows_url(sapi, emulator, app_config,
                                                        start_worker, tmp_path):  # noqa: F811
    spreadsheet = sheet(emulator, [[f"S-{i}", f"Item {i}", str(i), ""] for i in range(40)])
    binding = bind(sapi, spreadsheet)

    reader = _worker(app_config, tmp_path, "syncs")  # reads and plans; nobody renders yet
    try:
        run = sapi.post(f"/bindings/{binding['id']}/sync").json()
        _wait_status(sapi, binding, run["id"], "rendering")
    finally:
        reader.terminate()
        reader.wait(timeout=20)
    sid = spreadsheet["id"]
    client = emulator.client()
    ws = client.open_by_key(sid).sheet1
    ws.insert_row(["NEW", "Brand new", "5", ""], index=2)  # everything moves down a row
    ws.delete_rows(10)  # one rendered row disappears
    ws.sort((2, "des"), range="A3:G42")  # and the rest is sorted the other way round
    start_worker()
    done = _wait_status(sapi, binding, run["id"], "completed")
    assert done["to_render"] == 40
    rows = emulator.values(sid)[1:]
    template = binding["template"]
    assert rows[0][:4] == ["NEW", "Brand new", "5"] and len(rows[0]) <= 4  # not in this sync
    assert len(rows) == 40
    for row in rows[1:]:
        assert row[4] == url_of(sapi, template, row[1], row[2]), row


def _worker(app_config, tmp_path, *queues):
    import subprocess
    import sys

    from test_async_renders import worker_env

    with open(tmp_path / "reader.log", "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "webapp.cli", "worker", *queues],
                                env=worker_env(app_config), stdout=log,
                                stderr=subprocess.STDOUT)


def _wait_status(api: Api, binding: dict, run_id: int, status: str,
                 timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = {r["id"]: r for r in api.get(f"/bindings/{binding['id']}/runs").json()["data"]}
        if runs[run_id]["status"] == status:
            return runs[run_id]
        assert runs[run_id]["status"] != "failed", runs[run_id]["error"]
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} is {runs[run_id]['status']}, not {status}")


def test_quota_errors_are_retried_and_a_failed_sync_resumes(sapi, emulator,
                                                           start_worker):  # noqa: F811
    spreadsheet = sheet(emulator, [[f"S-{i}", f"Item {i}", str(i), ""] for i in range(6)])
    binding = bind(sapi, spreadsheet, output={"url_column": "Image"})
    start_worker()
    emulator.fault(429, count=2)
    run = sync(sapi, binding)
    assert run["status"] == "completed", run["error"]
    assert sum(r["status"] == 429 for r in emulator.requests()) == 2
    emulator.set_cells(spreadsheet["id"], "Sheet1!B2", [["Changed"]])
    emulator.fault(500, count=100, methods=["POST"])  # every write fails, even retried
    failed = sync(sapi, binding)
    assert failed["status"] == "failed" and failed["error"]["code"] == "sheets_unavailable"
    assert "500" in failed["error"]["message"] and failed["rendered"] == 1
    state = sapi.get(f"/bindings/{binding['id']}").json()
    assert state["status"] == "error" and state["error"]["code"] == "sheets_unavailable"
    assert emulator.values(spreadsheet["id"])[1][4] != url_of(sapi, binding["template"],
                                                             "Changed", "0")
    emulator.clear_faults()
    resumed = sync(sapi, binding)
    assert resumed["status"] == "completed", resumed["error"]
    assert (resumed["to_render"], resumed["rendered"]) == (1, 0)  # from the cache
    assert emulator.values(spreadsheet["id"])[1][4] == url_of(sapi, binding["template"],
                                                             "Changed", "0")
    assert sapi.get("/me").json()["usage"]["renders"] == 7  # nothing rendered twice


def test_problems_with_the_sheet_are_named(sapi, emulator, app):
    private = sheet(emulator, [["A-1", "Mug", "1", ""]], shared_with=[])
    source = sapi.post("/sources", json={"type": "google_sheets", "name": "x",
                                         "config": {"spreadsheet": private["url"]}}).json()
    answer = sapi.post(f"/sources/{source['id']}/test")
    message = error_of(answer, 403)["message"]
    assert emulator.service_account_email in message and "Share" in message
    shared = sheet(emulator, [["A-1", "Mug", "1", ""]])
    wrong_tab = sapi.post("/sources", json={"type": "google_sheets", "name": "x", "config": {
        "spreadsheet": shared["id"], "worksheet": "Products"}}).json()
    answer = sapi.post(f"/sources/{wrong_tab['id']}/test")
    assert "no tab named 'Products'" in error_of(answer, 422)["message"]
    answer = sapi.post("/sources", json={"type": "google_sheets", "name": "x",
                                         "config": {"spreadsheet": "not a sheet"}})
    assert error_of(answer, 400)["code"] == "invalid_spreadsheet"
    answer = sapi.post("/sources", json={"type": "google_sheets", "name": "x",
                                         "config": {"spreadsheet": shared["id"], "rows": 3}})
    assert error_of(answer, 422)["code"] == "invalid_config"
    ok = sapi.post("/sources", json={"type": "google_sheets", "name": "x",
                                     "config": {"spreadsheet": shared["id"]}}).json()
    rows = sapi.get(f"/sources/{ok['id']}/rows").json()
    assert rows == {"columns": HEADER, "rows": [{"row": 2, "values": {
        "SKU": "A-1", "Title": "Mug", "Price": "1", "Notes": ""}}]}
    types = {t["type"]: t for t in sapi.get("/connector-types").json()["data"]}
    assert types["google_sheets"]["service_account_email"] == emulator.service_account_email
    assert "spreadsheet" in types["google_sheets"]["schema"]["properties"]


def test_secret_fields_are_encrypted_and_never_returned(sapi, emulator, app, live,
                                                       make_account):
    shared = sheet(emulator, [["A-1", "Mug", "1", ""]])
    key = '{"type": "service_account", "client_email": "x@y", "private_key": "SECRET-PEM"}'
    answer = sapi.post("/sources", json={"type": "google_sheets", "name": "Own key", "config": {
        "spreadsheet": shared["id"], "service_account_key": key}})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert "service_account_key" not in body["config"]
    assert body["secrets_set"] == ["service_account_key"]
    assert "SECRET-PEM" not in sapi.get(f"/sources/{body['id']}").text
    with app.app_context():
        from webapp.extensions import db
        from webapp.models import Source

        stored = db.session.get(Source, body["id"])
        assert "SECRET-PEM" not in stored.secrets_encrypted
        assert stored.secrets["service_account_key"] == key
    _, _, token = make_account("mallory@example.org", scopes=("sources",))
    other = Api(live.url, token)
    assert error_of(other.get(f"/sources/{body['id']}"), 404)["code"] == "source_not_found"
    assert other.get("/sources").json()["data"] == []


def test_the_inbound_hook_renders_one_row(sapi, emulator, start_worker):  # noqa: F811
    spreadsheet = sheet(emulator, [["A-1", "Mug", "12", ""], ["A-2", "Tee", "8", ""]])
    binding = bind(sapi, spreadsheet, key_column="SKU")
    inbound = binding["inbound_url"]
    answer = requests.post(inbound, json={"row": 3}, timeout=30)
    assert answer.status_code == 201, answer.text
    assert answer.json()["rows"] == [3]
    values = emulator.values(spreadsheet["id"])
    assert values[2][4] == answer.json()["url"] and values[2][5] == "done"
    assert len(values[1]) <= 4  # row 2 was not pushed
    pushed = requests.post(inbound, json={"values": {"SKU": "A-1", "Title": "Mug v2",
                                                     "Price": "13"}}, timeout=30)
    assert pushed.status_code == 201 and pushed.json()["rows"] == [2]
    assert emulator.values(spreadsheet["id"])[1][4] == pushed.json()["url"]
    assert requests.post(inbound, json={"row": 1}, timeout=30).status_code == 422
    assert requests.post(inbound + "x", json={"row": 2}, timeout=30).status_code == 404
    form = requests.post(inbound, data={"row": "2"}, timeout=30)  # Apps Script may send a form
    assert form.status_code in (200, 201), form.text


def test_polling_syncs_due_bindings(sapi, emulator, app, start_worker):  # noqa: F811
    spreadsheet = sheet(emulator, [["A-1", "Mug", "12", ""]])
    binding = bind(sapi, spreadsheet, poll_seconds=30)
    assert sapi.put(f"/bindings/{binding['id']}", json={"poll_seconds": 5}).status_code == 422
    start_worker()
    import datetime as dt

    with app.app_context():
        from webapp.extensions import db
        from webapp.models import Binding
        from webapp.syncs import poll

        row = db.session.get(Binding, binding["id"])
        row.next_poll_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        db.session.commit()
        assert poll() == 1 and poll() == 0  # not twice while it runs
    run = _wait_status(sapi, binding, 1, "completed")
    assert run["trigger"] == "poll"
    assert emulator.values(spreadsheet["id"])[1][5] == "done"


@pytest.mark.parametrize("settings", ["oauth"], indirect=True)
def test_a_google_account_connected_by_oauth_and_then_revoked(sapi, emulator,
                                                              start_worker):  # noqa: F811
    link = sapi.post("/google/connect").json()["authorize_url"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    assert query["access_type"] == "offline" and "spreadsheets" in query["scope"]
    back = requests.post(link.split("?")[0], data={**query, "login_hint": "maya@example.com"},
                         allow_redirects=False, timeout=10)
    assert back.status_code == 302, back.text
    done = requests.get(back.headers["Location"], timeout=10)
    assert done.status_code == 200 and "maya@example.com" in done.text
    accounts = sapi.get("/google/accounts").json()["data"]
    assert [(a["email"], a["status"]) for a in accounts] == [("maya@example.com", "connected")]
    spreadsheet = sheet(emulator, [["A-1", "Mug", "12", ""]], shared_with=["maya@example.com"])
    source = sapi.post("/sources", json={"type": "google_sheets", "name": "Mine", "config": {
        "spreadsheet": spreadsheet["url"], "auth": "oauth"}}).json()
    template = sapi.post("/templates", json=CARD).json()["id"]
    binding = sapi.post("/bindings", json={"template": template, "source": source["id"],
                                           "poll_seconds": 0}).json()
    start_worker()
    assert sync(sapi, binding)["status"] == "completed"
    emulator.revoke_user("maya@example.com")
    emulator.expire_tokens()
    emulator.set_cells(spreadsheet["id"], "Sheet1!B2", [["Changed"]])
    failed = sync(sapi, binding)
    assert failed["status"] == "failed" and failed["error"]["code"] == "google_reconnect"
    assert sapi.get(f"/bindings/{binding['id']}").json()["status"] == "reconnect"
    assert sapi.get("/google/accounts").json()["data"][0]["status"] == "reconnect"
