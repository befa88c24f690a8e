"""CSV and XLSX uploads as sources: the same mapping and outputs as a sheet, the result as a
downloadable file with the URL column filled, rendered by a real worker."""

from __future__ import annotations

import csv
import io
import time

import openpyxl
import pytest
from apiclient import Api
from helpers import error_of, open_image
from samples import PRICE_CARD as CARD
from test_async_renders import start_worker  # noqa: F401  (fixture)

ROWS = "Title,Price,Notes\nMug,12,keep me\n,,\nTee,abc,x\nCap,9,\n"


@pytest.fixture
def sapi(app, live, make_account) -> Api:
    _, _, token = make_account(scopes=("render", "templates:read", "templates:write",
                                       "sources"))
    return Api(live.url, token)


def wait_run(api: Api, binding: int, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = api.get(f"/bindings/{binding}/runs").json()["data"]
        if runs and runs[0]["status"] in ("completed", "failed"):
            return runs[0]
        time.sleep(0.2)
    raise AssertionError(f"the sync did not end: {runs}")


def upload(api: Api, name: str, data: bytes, **form) -> dict:
    answer = api.post("/sources", data=form, files={"file": (name, data)})
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_a_csv_source_gets_its_url_column_filled(sapi, start_worker):  # noqa: F811
    template = sapi.post("/templates", json=CARD).json()["id"]
    source = upload(sapi, "rows.csv", ROWS.encode())
    assert source["type"] == "file" and source["download_url"].endswith("/file")
    binding = sapi.post("/bindings", json={"template": template, "source": source["id"],
                                           "output": {"url_column": "Image",
                                                      "status_column": "Status"}})
    assert binding.status_code == 201, binding.text
    assert binding.json()["mapping"] == {"title": "Title", "price": "Price"}  # auto-mapped
    start_worker()
    run = sapi.post(f"/bindings/{binding.json()['id']}/sync")
    assert run.status_code == 202, run.text
    done = wait_run(sapi, binding.json()["id"])
    assert done["status"] == "completed", done["error"]
    assert (done["rows_seen"], done["rows_skipped"], done["to_render"], done["errors"]) == \
        (4, 1, 3, 1)
    rows = list(csv.reader(io.StringIO(sapi.get(source["download_url"]).text)))
    assert rows[0] == ["Title", "Price", "Notes", "Image", "Status"]
    assert rows[1][:3] == ["Mug", "12", "keep me"] and rows[1][4] == "done"
    assert open_image(sapi.get(rows[1][3]).content).size == (160, 80)
    assert rows[2] == ["", "", ""]  # the blank row is left alone
    assert rows[3][3] == "" and rows[3][4].startswith("error: ") and "abc" in rows[3][4]
    assert rows[4][4] == "done"


def test_an_xlsx_source_keeps_its_formulas(sapi, start_worker):  # noqa: F811
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Products"
    sheet.append(["Title", "Price", "Total"])
    sheet.append(["Mug", 12, "=B2*2"])
    buffer = io.BytesIO()
    book.save(buffer)
    template = sapi.post("/templates", json=CARD).json()["id"]
    source = upload(sapi, "rows.xlsx", buffer.getvalue(), worksheet="Products")
    binding = sapi.post("/bindings", json={"template": template, "source": source["id"],
                                           "output": {"thumbnail_column": "Preview"}}).json()
    start_worker()
    sapi.post(f"/bindings/{binding['id']}/sync")
    assert wait_run(sapi, binding["id"])["status"] == "completed"
    result = openpyxl.load_workbook(io.BytesIO(sapi.get(source["download_url"]).content))
    rows = [list(r) for r in result["Products"].iter_rows(values_only=True)]
    assert rows[0] == ["Title", "Price", "Total", "Image", "Preview"]
    assert rows[1][2] == "=B2*2"
    assert rows[1][3].startswith("http") and rows[1][4] == f'=IMAGE("{rows[1][3]}")'


def test_bad_uploads_and_mappings_say_what_is_wrong(sapi, api):
    template = sapi.post("/templates", json=CARD).json()["id"]
    answer = sapi.post("/sources", files={"file": ("rows.txt", b"a,b\n")})
    assert error_of(answer, 415)["code"] == "unsupported_file"
    answer = sapi.post("/sources", files={"file": ("rows.xlsx", b"not a zip")})
    assert error_of(answer, 422)["code"] == "invalid_file"
    dup = upload(sapi, "dup.csv", b"Title,Title,Price\nA,B,1\n")
    answer = sapi.post("/bindings", json={"template": template, "source": dup["id"],
                                          "mapping": {"title": "Title"}})
    assert error_of(answer, 422)["code"] == "duplicate_column"
    assert "columns A and B" in answer.json()["error"]["message"]
    ok = upload(sapi, "ok.csv", ROWS.encode())
    answer = sapi.post("/bindings", json={"template": template, "source": ok["id"],
                                          "mapping": {"title": "Headline"}})
    assert error_of(answer, 422)["code"] == "column_not_found"
    assert "'Headline'" in answer.json()["error"]["message"]
    assert "'Title', 'Price', 'Notes'" in answer.json()["error"]["message"]
    answer = sapi.post("/bindings", json={"template": template, "source": ok["id"],
                                          "output": {"url_column": "Title"}})
    assert error_of(answer, 422)["code"] == "output_is_input"
    assert error_of(api.get("/sources"), 403)["code"] == "insufficient_scope"
