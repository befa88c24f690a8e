"""Helpers of the web UI's tests: a signed-in test client, CSRF tokens, and what a page shows
(messages beside fields, flashes, text). A module of its own, so every UI test imports the same
ones."""

from __future__ import annotations

import html
import io
import re

import pytest
from apiclient import PASSWORD

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
TOKEN = re.compile(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"')


def csrf(client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    return TOKEN.search(page.text).group(1)


def errors(page) -> list[str]:
    """The messages shown beside fields."""
    return [html.unescape(re.sub(r"\s+", " ", m).strip()) for m in
            re.findall(r'<p class="error" id="[^"]+">([^<]+)</p>', page.text)]


def flashes(page) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'<p class="flash flash-\w+">([^<]+)</p>',
                                                  page.text)]


def text(page) -> str:
    return html.unescape(page.text)


def sign_up(client, email: str = "maya@example.com", password: str = PASSWORD):
    return client.post("/signup", data={"csrf_token": csrf(client, "/signup"), "email": email,
                                        "password": password, "confirm": password})


def signed_in(app, email: str = "maya@example.com"):
    client = app.test_client()
    assert sign_up(client, email).status_code == 302
    return client


def upload(client, data: bytes, name: str, **fields):
    return client.post("/templates", content_type="multipart/form-data", data={
        "csrf_token": csrf(client, "/templates"), "file": (io.BytesIO(data), name), **fields})
