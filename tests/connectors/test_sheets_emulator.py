"""The Sheets emulator, driven by the real gspread client and real google-auth (through
``connectors.google_api``) over HTTP on 127.0.0.1: the API subset, Google's shapes and errors,
faults and quota, the token endpoints, persistence, the web view and the command."""

from __future__ import annotations

import base64
import json
import re
import time
from urllib.parse import parse_qs, urlsplit

import gspread
import pytest
import requests
from click.testing import CliRunner
from fakes.sheets import REDIRECT_URI, SheetsEmulator
from google.auth.exceptions import RefreshError
from gspread.exceptions import APIError, SpreadsheetNotFound, WorksheetNotFound

from connectors.google_api import Backoff
from webapp.cli import main
from webapp.sheets_emulator.a1 import A1Error, A1Range, parse_range
from webapp.sheets_emulator.auth import new_private_key_pem

ROWS = [["Name", "Price", "Image"], ["Mug", 12, ""], ["Cap", 7.5, ""]]
NO_RETRY = Backoff(retries=0)


def open_book(emulator: SheetsEmulator, sheets=None, **kwargs) -> gspread.Spreadsheet:
    sid = emulator.create_spreadsheet(sheets=sheets or {"Sheet1": ROWS}, **kwargs)["id"]
    return emulator.client().open_by_key(sid)


# A1 notation


@pytest.mark.parametrize(("text", "expected"), [
    ("Sheet1", A1Range("Sheet1")),
    ("'My Sheet'!A1:C3", A1Range("My Sheet", 0, 0, 3, 3)),
    ("sheet1!a:c", A1Range("Sheet1", 0, 0, None, 3)),
    ("Sheet1!2:5", A1Range("Sheet1", 1, 0, 5, None)),
    ("Sheet1!A2:C", A1Range("Sheet1", 1, 0, None, 3)),
    ("A1:B2", A1Range(None, 0, 0, 2, 2)),
    ("C3:A1", A1Range(None, 0, 0, 3, 3)),
    ("B2", A1Range(None, 1, 1, 2, 2, single=True)),
    ("'It''s'!B2", A1Range("It's", 1, 1, 2, 2, single=True)),
])
def test_a1_notation(text, expected):
    assert parse_range(text, ["Sheet1", "My Sheet", "It's"]) == expected


@pytest.mark.parametrize("text", ["Nope!A1", "Nope", "Sheet1!A0", "'Sheet1", "Sheet1!A1:B2:C3"])
def test_a1_notation_errors(text):
    with pytest.raises(A1Error, match=re.escape(f"Unable to parse range: {text}")):
        parse_range(text, ["Sheet1"])


# service accounts


def test_service_account_token_exchange(emulator):
    book = open_book(emulator)
    assert book.title == "Pixelmerge test"
    token = emulator.requests("/token")
    assert [(r["status"], r["principal"]) for r in token] == [(200, emulator.service_account_email)]
    forged = {**emulator.service_account_key, "private_key": new_private_key_pem()}
    with pytest.raises(RefreshError, match="invalid_grant: Invalid JWT Signature"):
        emulator.client(key=forged).open_by_key(book.id)
    assert emulator.requests("/token")[-1]["status"] == 400


def test_expired_access_tokens_are_refreshed(emulator):
    book = open_book(emulator)
    sheet = book.sheet1
    assert emulator.expire_tokens() == 1
    emulator.clear_requests()
    assert sheet.acell("A2").value == "Mug"
    log = emulator.requests("")
    assert [(r["path"].split("/")[1], r["status"]) for r in log] == \
        [("v4", 401), ("token", 200), ("v4", 200)]


def test_second_service_account_sees_only_what_is_shared_with_it(emulator):
    key = emulator.create_service_account("reports-bot")
    assert key["client_email"] == "reports-bot@pixelmerge-emulator.iam.gserviceaccount.com"
    assert key["token_uri"] == emulator.url + "/token" and key["type"] == "service_account"
    sid = emulator.create_spreadsheet()["id"]
    with pytest.raises(PermissionError):
        emulator.client(key=key).open_by_key(sid)
    emulator.share(sid, key["client_email"], "reader")
    sheet = emulator.client(key=key).open_by_key(sid).sheet1
    assert "values" not in sheet.spreadsheet.values_get("Sheet1")
    with pytest.raises(APIError) as info:
        sheet.update([["x"]], "A1")
    assert info.value.code == 403


# metadata and errors


def test_metadata_has_googles_shape(emulator):
    book = open_book(emulator, {"Sheet1": ROWS, "My Sheet": [["x"]]}, rows=50, cols=5)
    meta = book.fetch_sheet_metadata()
    assert meta["spreadsheetId"] == book.id and len(book.id) == 44
    assert meta["properties"]["locale"] == "en_US"
    assert meta["spreadsheetUrl"] == f"{emulator.url}/spreadsheets/d/{book.id}/edit"
    props = [s["properties"] for s in meta["sheets"]]
    assert [(p["title"], p["index"], p["sheetType"]) for p in props] == \
        [("Sheet1", 0, "GRID"), ("My Sheet", 1, "GRID")]
    assert props[0]["gridProperties"] == {"rowCount": 50, "columnCount": 5}
    assert book.worksheet("My Sheet").get_all_values() == [["x"]]
    with pytest.raises(WorksheetNotFound):
        book.worksheet("Nope")


def test_not_shared_unknown_and_bad_ranges(emulator):
    sid = emulator.create_spreadsheet(shared_with=["someone@example.com"])["id"]
    client = emulator.client(backoff=NO_RETRY)
    with pytest.raises(APIError) as info:
        client.http_client.fetch_sheet_metadata(sid)
    assert info.value.code == 403
    assert info.value.error == {"code": 403, "message": "The caller does not have permission",
                                "status": "PERMISSION_DENIED"}
    with pytest.raises(PermissionError):
        client.open_by_key(sid)
    with pytest.raises(SpreadsheetNotFound):
        client.open_by_key("1" + "x" * 43)
    emulator.share(sid, emulator.service_account_email)
    book = client.open_by_key(sid)
    with pytest.raises(APIError, match=re.escape("Unable to parse range: Nope!A1")) as info:
        book.values_get("Nope!A1")
    assert info.value.error["status"] == "INVALID_ARGUMENT"


def test_grid_limits(emulator):
    sheet = open_book(emulator).sheet1
    with pytest.raises(APIError) as info:
        sheet.update([["x"]], "AA1")
    assert info.value.code == 400
    assert info.value.error["message"] == \
        "Range ('Sheet1'!AA1) exceeds grid limits. Max rows: 1000, max columns: 26"
    with pytest.raises(APIError, match=re.escape("tried writing to column [C]")):
        sheet.update([["a", "b", "c"]], "A1:B1")
    wide = sheet.get("A1:AZ2")  # reads beyond the grid are clamped
    assert wide == [["Name", "Price", "Image"], ["Mug", "12"]]
    assert sheet.spreadsheet.values_get("Sheet1!A1:AZ2")["range"] == "Sheet1!A1:Z2"


def test_unauthenticated_requests_get_googles_401(emulator):
    sid = emulator.create_spreadsheet()["id"]
    answer = requests.get(f"{emulator.url}/v4/spreadsheets/{sid}", timeout=5,
                          headers={"Authorization": "Bearer ya29.made-up"})
    assert answer.status_code == 401
    assert answer.json()["error"]["status"] == "UNAUTHENTICATED"
    assert answer.json()["error"]["message"].startswith(
        "Request had invalid authentication credentials. Expected OAuth 2 access token")


# reading


def test_reading_trims_like_google(emulator):
    book = open_book(emulator, {"Sheet1": [["a", "", "c", ""], ["", "", "", ""], ["d"],
                                           ["", ""], []]})
    answer = book.values_get("Sheet1")
    assert answer == {"range": "Sheet1!A1:Z1000", "majorDimension": "ROWS",
                      "values": [["a", "", "c"], [], ["d"]]}
    assert "values" not in book.values_get("Sheet1!E5:F9")
    columns = book.values_get("Sheet1!A1:C3", params={"majorDimension": "COLUMNS"})
    assert columns["values"] == [["a", "", "d"], [], ["c"]]
    assert book.sheet1.get_all_values() == [["a", "", "c"], ["", "", ""], ["d", "", ""]]


def test_render_options(emulator):
    seeded = [[{"value": 1234.5, "formatted": "$1,234.50"}, {"formula": "=A2*2", "value": 42},
               True, 7, 2.5, {"value": "0012"}, '=IMAGE("https://example.com/a.png")']]
    book = open_book(emulator, {"Sheet1": seeded})

    def read(option):
        return book.values_get("A1:G1", params={"valueRenderOption": option})["values"][0]

    assert read("FORMATTED_VALUE") == ["$1,234.50", "42", "TRUE", "7", "2.5", "0012"]
    assert read("UNFORMATTED_VALUE") == [1234.5, 42, True, 7, 2.5, "0012"]
    assert read("FORMULA") == [1234.5, "=A2*2", True, 7, 2.5, "0012",
                               '=IMAGE("https://example.com/a.png")']


def test_batch_get(emulator):
    book = open_book(emulator, {"Sheet1": ROWS, "Other": [["o"]]})
    sheet = book.sheet1
    emulator.clear_requests()
    first, second = sheet.batch_get(["A1:B2", "C1"])
    assert first == [["Name", "Price"], ["Mug", "12"]] and second == [["Image"]]
    answer = book.values_batch_get(["Other!A1:B2", "Sheet1!A3"])
    assert answer["spreadsheetId"] == book.id
    assert answer["valueRanges"] == [
        {"range": "Other!A1:B2", "majorDimension": "ROWS", "values": [["o"]]},
        {"range": "Sheet1!A3", "majorDimension": "ROWS", "values": [["Cap"]]}]
    assert [r["path"].endswith("/values:batchGet") for r in emulator.requests()] == [True, True]


# writing


def test_update_raw_and_user_entered(emulator):
    sheet = open_book(emulator, {"Sheet1": []}).sheet1
    typed = ["=A9*2", "12", "TRUE", "'007", '=IMAGE("https://example.com/x.png")', "$1,200"]
    sheet.update([typed], "A1", value_input_option="RAW")
    sheet.update([typed], "A2", value_input_option="USER_ENTERED")
    assert sheet.get("A1:F1") == [typed]
    assert sheet.get("A2:F2") == [["", "12", "TRUE", "007", "", "$1,200"]]
    assert sheet.get("A2:F2", value_render_option="UNFORMATTED_VALUE") == \
        [["", 12, True, "007", "", 1200]]
    assert sheet.get("A2:E2", value_render_option="FORMULA") == \
        [["=A9*2", 12, True, "007", '=IMAGE("https://example.com/x.png")']]
    answer = sheet.update([[1, None, 3]], "B5")
    assert answer["updatedRange"] == "Sheet1!B5:D5" and answer["updatedCells"] == 2


def test_batch_update_is_one_request(emulator):
    sheet = open_book(emulator).sheet1
    emulator.clear_requests()
    answer = sheet.batch_update([
        {"range": "C2", "values": [['=IMAGE("https://example.com/mug.png")']]},
        {"range": "D2:D3", "values": [["done"], ["error: font"]]},
    ], value_input_option="USER_ENTERED")
    assert (answer["totalUpdatedCells"], answer["totalUpdatedRows"],
            answer["totalUpdatedColumns"], answer["totalUpdatedSheets"]) == (3, 2, 2, 1)
    assert [r["updatedRange"] for r in answer["responses"]] == ["Sheet1!C2", "Sheet1!D2:D3"]
    assert len(emulator.requests()) == 1
    cells = emulator.cells(sheet.spreadsheet_id, "Sheet1")
    assert cells["values"] == [["Name", "Price", "Image"], ["Mug", "12", "", "done"],
                               ["Cap", "7.5", "", "error: font"]]
    assert cells["formulas"][1][2] == '=IMAGE("https://example.com/mug.png")'
    with pytest.raises(APIError, match="exceeds grid limits"):
        sheet.batch_update([{"range": "A1", "values": [["first"]]},
                            {"range": "ZZ1", "values": [["x"]]}])
    assert sheet.acell("A1").value == "Name"  # nothing of a refused batch is written


def test_append(emulator):
    sheet = open_book(emulator, rows=4).sheet1
    answer = sheet.append_row(["Hat", 3])
    assert answer["tableRange"] == "Sheet1!A1:C3"
    assert answer["updates"]["updatedRange"] == "Sheet1!A4:B4"
    answer = sheet.append_rows([["Bag", 20], ["Pen", 1]], insert_data_option="INSERT_ROWS")
    assert answer["updates"]["updatedRange"] == "Sheet1!A5:B6"
    assert [row[0] for row in sheet.get_all_values()] == ["Name", "Mug", "Cap", "Hat", "Bag",
                                                         "Pen"]
    assert sheet.spreadsheet.fetch_sheet_metadata()["sheets"][0]["properties"][
        "gridProperties"]["rowCount"] == 6


def test_rows_columns_and_sheets(emulator):
    book = open_book(emulator, rows=10, cols=3)
    sheet = book.sheet1
    sheet.insert_row(["Bag", 20], index=2)
    assert sheet.col_values(1) == ["Name", "Bag", "Mug", "Cap"]
    sheet.delete_rows(3)
    assert sheet.col_values(1) == ["Name", "Bag", "Cap"]
    sheet.add_cols(2)
    sheet.resize(rows=20)
    props = book.fetch_sheet_metadata()["sheets"][0]["properties"]["gridProperties"]
    assert props == {"rowCount": 20, "columnCount": 5}
    sheet.update([["x"]], "E20")
    sheet.sort((2, "des"), range="A2:C3")
    assert sheet.get("A2:B3") == [["Bag", "20"], ["Cap", "7.5"]]
    sheet.sort((1, "asc"), range="A2:C3")
    assert sheet.col_values(1) == ["Name", "Bag", "Cap"]
    added = book.add_worksheet("Outputs", rows=5, cols=2)
    assert (added.title, added.row_count, added.col_count) == ("Outputs", 5, 2)
    with pytest.raises(APIError, match='A sheet with the name "Outputs" already exists'):
        book.add_worksheet("Outputs", rows=5, cols=2)
    assert [ws.title for ws in book.worksheets()] == ["Sheet1", "Outputs"]


# faults and quota


def test_faults_are_absorbed_or_raised_by_the_backoff(emulator):
    sid = emulator.create_spreadsheet(sheets={"Sheet1": ROWS})["id"]
    sheet = emulator.client(backoff=Backoff(retries=3, base=0.01)).open_by_key(sid).sheet1
    emulator.clear_requests()
    emulator.fault(429, 2, paths="values")
    assert sheet.get_all_values()[1][0] == "Mug"
    assert [r["status"] for r in emulator.requests()] == [429, 429, 200]
    emulator.clear_requests()
    emulator.fault(500, 6)
    flaky = emulator.client(backoff=Backoff(retries=2, base=0.01))
    with pytest.raises(APIError) as info:
        flaky.http_client.values_get(sid, "Sheet1")
    assert info.value.error == {"code": 500, "message": "Internal error encountered.",
                                "status": "INTERNAL"}
    assert [r["status"] for r in emulator.requests()] == [500, 500, 500]


def test_fault_body_and_filters(emulator):
    sheet = open_book(emulator).sheet1
    emulator.fault(503, 1, methods=["PUT"], retry_after=1)
    emulator.fault(429, 1, methods=["GET"])
    client = emulator.client(backoff=NO_RETRY)
    with pytest.raises(APIError) as info:
        client.http_client.values_get(sheet.spreadsheet_id, "Sheet1")
    error = info.value.error
    assert error["status"] == "RESOURCE_EXHAUSTED" and error["message"].startswith(
        "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute "
        "per user' of service 'sheets.googleapis.com'")
    assert "Retry-After" not in info.value.response.headers
    client.http_client.values_get(sheet.spreadsheet_id, "Sheet1")  # GETs: no fault left
    with pytest.raises(APIError) as info:
        client.http_client.values_update(sheet.spreadsheet_id, "A1", body={"values": [["x"]]},
                                         params={"valueInputOption": "RAW"})
    assert info.value.error == {"code": 503, "message": "The service is currently unavailable.",
                                "status": "UNAVAILABLE"}
    assert info.value.response.headers["Retry-After"] == "1"
    assert emulator.admin("GET", "/faults") == {"faults": []}


def test_quota_per_minute(emulator):
    sheet = open_book(emulator).sheet1
    emulator.set_quota(2)
    client = emulator.client(backoff=NO_RETRY)
    sid = sheet.spreadsheet_id
    client.http_client.values_get(sid, "A1")
    client.http_client.values_get(sid, "A1")
    with pytest.raises(APIError) as info:
        client.http_client.values_get(sid, "A1")
    assert info.value.code == 429 and "'Read requests per minute per user'" in str(info.value)
    client.http_client.values_update(sid, "A1", params={"valueInputOption": "RAW"},
                                     body={"values": [["writes count apart"]]})
    emulator.reset_quota()
    assert client.http_client.values_get(sid, "A1")["values"] == [["writes count apart"]]


# OAuth for users


def test_oauth_discovery_and_sign_in_page(emulator):
    doc = requests.get(emulator.discovery_url, timeout=5).json()
    for key, path in [("issuer", ""), ("authorization_endpoint", "/o/oauth2/v2/auth"),
                      ("token_endpoint", "/token"), ("userinfo_endpoint", "/oauth2/v3/userinfo"),
                      ("revocation_endpoint", "/revoke"), ("jwks_uri", "/oauth2/v3/certs")]:
        assert doc[key] == emulator.url + path
    page = requests.get(doc["authorization_endpoint"], timeout=5, params={
        "client_id": "c", "redirect_uri": REDIRECT_URI, "response_type": "code",
        "scope": "email", "state": "s1", "access_type": "offline", "prompt": "consent"})
    assert page.status_code == 200 and "Emulated Google sign-in (not Google)" in page.text
    assert 'name="email"' in page.text and "Continue" in page.text
    denied = requests.post(doc["authorization_endpoint"], allow_redirects=False, timeout=5,
                           data={"client_id": "c", "redirect_uri": REDIRECT_URI,
                                 "response_type": "code", "state": "s1", "deny": "1"})
    assert denied.headers["Location"] == REDIRECT_URI + "?error=access_denied&state=s1"


def test_oauth_code_refresh_userinfo_and_revocation(emulator):
    sid = emulator.create_spreadsheet(sheets={"Sheet1": ROWS}, shared_with=["ada@example.com"])
    response = requests.post(f"{emulator.url}/o/oauth2/v2/auth", allow_redirects=False,
                             timeout=5, data={
                                 "client_id": "web", "redirect_uri": REDIRECT_URI,
                                 "response_type": "code", "scope": "openid email "
                                 "https://www.googleapis.com/auth/spreadsheets",
                                 "state": "xyz", "access_type": "offline", "nonce": "n-1",
                                 "login_hint": "ada@example.com"})
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["state"] == ["xyz"]
    token = requests.post(f"{emulator.url}/token", auth=("web", "s3cret"), timeout=5, data={
        "grant_type": "authorization_code", "code": query["code"][0],
        "redirect_uri": REDIRECT_URI}).json()
    assert token["token_type"] == "Bearer" and token["expires_in"] > 3000
    assert token["refresh_token"] and token["scope"].startswith("openid")
    claims = json.loads(base64.urlsafe_b64decode(token["id_token"].split(".")[1] + "=="))
    assert (claims["email"], claims["aud"], claims["nonce"]) == ("ada@example.com", "web", "n-1")
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    info = requests.get(f"{emulator.url}/oauth2/v3/userinfo", headers=bearer, timeout=5).json()
    assert info["email"] == "ada@example.com" and info["email_verified"] is True
    session = requests.Session()
    session.headers.update(bearer)
    assert emulator.client(session=session).open_by_key(sid["id"]).sheet1.acell("A2").value \
        == "Mug"
    refresh = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"],
               "client_id": "web", "client_secret": "s3cret"}
    renewed = requests.post(f"{emulator.url}/token", data=refresh, timeout=5).json()
    assert renewed["access_token"] != token["access_token"] and "refresh_token" not in renewed
    assert requests.post(f"{emulator.url}/revoke", params={"token": token["refresh_token"]},
                         timeout=5).status_code == 200
    refused = requests.post(f"{emulator.url}/token", data=refresh, timeout=5)
    assert refused.status_code == 400
    assert refused.json() == {"error": "invalid_grant",
                              "error_description": "Token has been expired or revoked."}
    assert requests.get(f"{emulator.url}/oauth2/v3/userinfo", timeout=5, headers={
        "Authorization": f"Bearer {renewed['access_token']}"}).status_code == 401


def test_admin_revokes_a_users_grants(emulator):
    token = emulator.user_token("bob@example.com")
    assert emulator.revoke_user("bob@example.com") == 1
    refused = requests.post(f"{emulator.url}/token", timeout=5, data={
        "grant_type": "refresh_token", "refresh_token": token["refresh_token"],
        "client_id": "pixelmerge-test"})
    assert refused.json()["error"] == "invalid_grant"


# persistence, the web view and the command


def test_configured_client_and_persistence(tmp_path):
    data = tmp_path / "sheets.json"
    with SheetsEmulator(data_path=data, client_id="web", client_secret="s3cret") as first:
        with pytest.raises(AssertionError, match="invalid_client"):
            first.user_token("ada@example.com", client_id="web", client_secret="wrong")
        with pytest.raises(AssertionError, match="sign-in refused"):
            first.authorize("ada@example.com", client_id="other")
        refresh = first.user_token("ada@example.com", client_id="web",
                                   client_secret="s3cret")["refresh_token"]
        key = first.service_account_key
        sid = first.create_spreadsheet(sheets={"Sheet1": ROWS})["id"]
        first.client().open_by_key(sid).sheet1.update([["Lamp", 30]], "A4")
    assert json.loads(data.read_text())["version"] == 1
    with SheetsEmulator(data_path=data, client_id="web", client_secret="s3cret",
                        port=first.port) as second:  # the key's token_uri names the port
        sheet = second.client(key=key).open_by_key(sid).sheet1
        assert sheet.get_all_values()[3] == ["Lamp", "30", ""]
        renewed = requests.post(f"{second.url}/token", auth=("web", "s3cret"), timeout=5,
                                data={"grant_type": "refresh_token", "refresh_token": refresh})
        assert renewed.status_code == 200


def test_web_view(emulator):
    sid = emulator.create_spreadsheet(title="Catalogue", sheets={"Sheet1": [
        ["Name", "Preview"], ["Mug", '=IMAGE("https://example.com/mug.png")']]})["id"]
    home = requests.get(emulator.url + "/", timeout=5).text
    assert "Pixelmerge Sheets emulator — not Google" in home
    assert "Catalogue" in home and emulator.service_account_email in home
    page = requests.get(f"{emulator.url}/spreadsheets/d/{sid}/edit", timeout=5).text
    assert "Pixelmerge Sheets emulator — not Google" in page
    assert '<img src="https://example.com/mug.png"' in page and "<th>B</th>" in page
    form = {"status": "500", "count": "2", "next": f"/spreadsheets/d/{sid}/edit"}
    assert requests.post(f"{emulator.url}/ui/faults", data=form, timeout=5).status_code == 403
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    queued = requests.post(f"{emulator.url}/ui/faults", data={**form, "csrf": csrf},
                           allow_redirects=False, timeout=5)
    assert queued.status_code == 303 and queued.headers["Location"].endswith("/edit")
    assert emulator.admin("GET", "/faults")["faults"][0]["count"] == 2
    refused = requests.post(f"{emulator.url}/_emulator/reset", data={"x": "1"}, timeout=5)
    assert refused.status_code == 415  # a cross-site form cannot reach the admin API


def test_request_log_records_each_call(emulator):
    sheet = open_book(emulator).sheet1
    emulator.clear_requests()
    started = time.time()
    sheet.get_all_values(value_render_option="UNFORMATTED_VALUE")
    (entry,) = emulator.requests()
    assert entry["method"] == "GET" and entry["status"] == 200 and entry["kind"] == "read"
    assert entry["path"] == f"/v4/spreadsheets/{sheet.spreadsheet_id}/values/'Sheet1'"
    assert "valueRenderOption=UNFORMATTED_VALUE" in entry["query"]
    assert entry["principal"] == emulator.service_account_email and entry["time"] >= started - 1


def test_admin_seeding_and_reading(emulator):
    sid = emulator.create_spreadsheet(rows=2, cols=2)["id"]
    emulator.set_cells(sid, "Sheet1!B2", [["'0012", {"value": 0.25, "formatted": "25%"}],
                                          [{"formula": "=B2&C2", "value": "001225%"}]])
    cells = emulator.cells(sid, "Sheet1")
    assert cells["range"] == "Sheet1!A1:C3"  # the grid grew to fit
    assert cells["values"] == [[], ["", "0012", "25%"], ["", "001225%"]]
    assert cells["formulas"][2] == ["", "=B2&C2"]
    assert cells["cells"][1] == [None, {"value": "0012"}, {"value": 0.25, "formatted": "25%"}]
    assert emulator.values(sid) == cells["values"]


def test_command_help():
    result = CliRunner().invoke(main, ["sheets-emulator", "--help"])
    assert result.exit_code == 0
    assert "NOT Google" in result.output
    for option in ("--host", "--port", "--data", "--credentials", "--quota-per-minute"):
        assert option in result.output
