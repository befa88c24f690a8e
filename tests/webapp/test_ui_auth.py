"""The web UI's accounts: sign up, in and out, password reset links, sessions, and CSRF on its
forms only (the API and the public endpoints take no cookies and need no token)."""

from __future__ import annotations

import html
import logging
import re
import socketserver
import threading
from collections.abc import Iterator

import pytest
import services
from apiclient import PASSWORD
from uipages import SQLITE, csrf, errors, sign_up, signed_in

from webapp.extensions import db
from webapp.models import ApiKey, User


@SQLITE
def test_sign_up_creates_a_user_with_a_workspace_and_signs_in(app):
    client = app.test_client()
    answer = sign_up(client)
    assert answer.status_code == 302 and answer.headers["Location"] == "/"
    dashboard = html.unescape(client.get("/").text)
    assert "Welcome to Pixelmerge" in dashboard and "maya's workspace" in dashboard
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == "maya@example.com"))
        assert user.workspace.name == "maya's workspace" and user.check_password(PASSWORD)


@SQLITE
def test_sign_up_mistakes_are_shown_beside_their_fields(app):
    client = app.test_client()
    token = csrf(client, "/signup")
    page = client.post("/signup", data={"csrf_token": token, "email": "not-an-address",
                                        "password": "short", "confirm": "other"})
    assert page.status_code == 200
    assert errors(page) == ["Enter an email address like name@example.com.",
                            "Use at least 8 characters.", "The two passwords differ."]
    assert 'aria-invalid="true"' in page.text and 'value="not-an-address"' in page.text
    signed_in(app)
    again = sign_up(app.test_client())
    assert again.status_code == 200
    assert errors(again) == ["A user maya@example.com exists already."]


@SQLITE
def test_pages_need_a_session_and_signing_in_returns_to_them(app):
    client = app.test_client()
    signed_in(app).post("/logout", data={})  # an account to sign into
    answer = client.get("/keys?x=1")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/login?next=/keys?x%3D1"
    assert client.get("/bindings/1/progress.json").status_code == 401  # JSON, no redirect
    token = csrf(client, "/login")
    wrong = client.post("/login?next=/keys", data={"csrf_token": token,
                                                    "email": "maya@example.com",
                                                    "password": "wrong password"})
    assert errors(wrong) == ["That email and password do not match an account."]
    right = client.post("/login?next=/keys", data={"csrf_token": token,
                                                    "email": "Maya@Example.com ",
                                                    "password": PASSWORD})
    assert right.headers["Location"] == "/keys"
    elsewhere = app.test_client()
    token = csrf(elsewhere, "/login")
    away = elsewhere.post("/login?next=https://evil.example/", data={
        "csrf_token": token, "email": "maya@example.com", "password": PASSWORD})
    assert away.headers["Location"] == "/"  # never another site


@SQLITE
def test_a_form_sent_after_the_session_ended_returns_to_its_page(app):
    client = signed_in(app)
    token = csrf(client, "/keys")
    with client.session_transaction() as session:
        session.pop("_user_id")  # the session ends while the form is open
    answer = client.post("/keys", data={"csrf_token": token, "name": "Zapier",
                                        "scopes": ["render"], "expires": "never"},
                         headers={"Referer": "http://localhost/keys"})
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/login?next=/keys"
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(ApiKey)) == 0


@SQLITE
def test_sign_out_is_a_post_with_a_token(app):
    client = signed_in(app)
    assert client.get("/logout").status_code == 405
    refused = client.post("/logout", data={})
    assert refused.status_code == 302 and client.get("/").status_code == 200  # still in
    client.post("/logout", data={"csrf_token": csrf(client, "/")})
    assert client.get("/").status_code == 302


@SQLITE
def test_forms_without_a_valid_token_change_nothing(app):
    client = signed_in(app)
    for token in (None, "forged"):
        data = {"name": "Zapier", "scopes": ["render"], "expires": "never"}
        if token:
            data["csrf_token"] = token
        answer = client.post("/keys", data=data, headers={"Referer": "http://localhost/keys"})
        assert answer.status_code == 302 and answer.headers["Location"] == "/keys"
        assert "The form had expired" in client.get("/keys").text
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(ApiKey)) == 0


def test_the_api_and_public_endpoints_need_no_csrf_token(app, api):
    """CSRF is checked by the UI's blueprints only: bearer-key calls keep working."""
    created = api.post("/templates", json={"name": "T", "width": 10, "height": 10,
                                           "layers": []})
    assert created.status_code == 201, created.text
    assert api.get("/healthz").status_code == 200
    hook = api.post(f"{api.base}/hooks/in/not-a-token", json={"row": 2})
    assert hook.status_code == 404 and hook.json()["error"]["code"] != "csrf_failed"


@SQLITE
def test_a_reset_link_from_the_log_sets_a_new_password_once(app, caplog):
    signed_in(app).post("/logout")
    client = app.test_client()
    with caplog.at_level(logging.WARNING, logger="webapp.ui.auth"):
        sent = client.post("/password/forgot", data={
            "csrf_token": csrf(client, "/password/forgot"), "email": "maya@example.com"})
        unknown = client.post("/password/forgot", data={
            "csrf_token": csrf(client, "/password/forgot"), "email": "nobody@example.com"})
    assert sent.status_code == unknown.status_code == 302  # the same answer for both
    links = re.findall(r"(http://\S+/password/reset/\S+)", caplog.text)
    assert len(links) == 1
    path = links[0].split("127.0.0.1", 1)[1].split(":", 1)[1].split("/", 1)[1]
    path = "/" + path
    changed = client.post(path, data={"csrf_token": csrf(client, path),
                                      "password": "a new password", "confirm": "a new password"})
    assert changed.headers["Location"] == "/"
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == "maya@example.com"))
        assert user.check_password("a new password")
    used = client.get(path)  # the link was for the old password
    assert used.status_code == 302 and used.headers["Location"] == "/password/forgot"


@SQLITE
def test_an_expired_or_forged_reset_link_is_refused(app):
    client = signed_in(app)
    with app.test_request_context():
        from webapp.ui.auth import reset_token

        with app.app_context():
            user = db.session.scalar(db.select(User))
            token = reset_token(user)
    app.config["PASSWORD_RESET_SECONDS"] = -1
    assert client.get(f"/password/reset/{token}").headers["Location"] == "/password/forgot"
    app.config["PASSWORD_RESET_SECONDS"] = 3600
    assert client.get(f"/password/reset/{token}").status_code == 200
    assert client.get(f"/password/reset/{token}x").status_code == 302


class _SMTP(socketserver.StreamRequestHandler):
    """Just enough SMTP to receive one message."""

    def handle(self) -> None:
        self.wfile.write(b"220 test\r\n")
        while line := self.rfile.readline():
            verb = line.strip().split(b" ")[0].upper()
            if verb == b"DATA":
                self.wfile.write(b"354 go on\r\n")
                body = b"".join(iter(lambda: self.rfile.readline(), b".\r\n"))
                self.server.messages.append(body.decode())
                self.wfile.write(b"250 ok\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            elif verb == b"EHLO":
                self.wfile.write(b"250 test\r\n")
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp() -> Iterator[socketserver.ThreadingTCPServer]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", services.free_port()), _SMTP)
    server.messages = []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@SQLITE
def test_with_smtp_configured_the_link_is_mailed(app, smtp):
    signed_in(app).post("/logout")
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=smtp.server_address[1],
                      SMTP_STARTTLS=False)
    client = app.test_client()
    client.post("/password/forgot", data={"csrf_token": csrf(client, "/password/forgot"),
                                          "email": "maya@example.com"})
    assert len(smtp.messages) == 1
    message = smtp.messages[0]
    assert "To: maya@example.com" in message and "/password/reset/" in message
