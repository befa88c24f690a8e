"""The guarded outbound session against a real HTTP(S) site on 127.0.0.1 (the only allowlisted
address), with trap listeners on loopback addresses that are *not* allowlisted to prove that a
refused URL never gets a connection.

Network rule: traffic goes to loopback only, and no test performs a DNS lookup; a guard fixture
fails any test that tries either, so a pinning bug shows up as a failure here rather than as a
packet elsewhere. Private and public addresses appear only in ``check_url`` tests, which never
connect, or behind an injected resolver.
"""

from __future__ import annotations

import contextlib
import datetime
import gzip
import io
import ipaddress
import json
import os
import socket
import socketserver
import ssl
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from PIL import Image

from connectors.http import (
    GuardedSession,
    OutboundError,
    OutboundPolicy,
    OutboundRefused,
    OutboundTooLarge,
    check_url,
)
from renderer.errors import LimitError, ResourceError
from renderer.images import read_source

LOCAL = ("127.0.0.1/32",)
MB = 1024 * 1024


# --- guards ----------------------------------------------------------------------------------

def _loopback(host: object) -> bool:
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test on any connection to a non-loopback address or any name lookup."""
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(sock: socket.socket, address: tuple) -> None:
        if not _loopback(address[0]):
            raise AssertionError(f"a test tried to connect to {address!r}")
        real_connect(sock, address)

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> list:
        if not _loopback(host):
            raise AssertionError(f"a test tried to resolve {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


# --- the fake site ---------------------------------------------------------------------------

def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 3), "#e11d48").save(out, "PNG")
    return out.getvalue()


PNG = _png()
GZIP_TEXT = b"hello, decoded world " * 100


@cache
def bomb(encoding: str) -> bytes:
    """32 MiB of zeros compressed to about 32 KiB."""
    wbits = 31 if encoding == "gzip" else 15
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    zeros = bytes(MB)
    return b"".join(compressor.compress(zeros) for _ in range(32)) + compressor.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Site

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        self.query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        self.server.seen.append({"method": self.command, "path": self.path,
                                 "headers": {k.lower(): v for k, v in self.headers.items()},
                                 "body": self.body})
        name, _, arg = parts.path.strip("/").partition("/")
        try:
            getattr(self, "route_" + name.replace("-", "_"), self.route_missing)(arg)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up, as intended
            self.close_connection = True

    def reply(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        headers = {"Content-Length": str(len(body)), "Connection": "close",
                   **{key.replace("_", "-"): value for key, value in headers.items()}}
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def route_missing(self, arg: str) -> None:
        self.reply(404, b"no such page")

    def route_png(self, arg: str) -> None:
        self.reply(200, PNG, Content_Type="image/png")

    def route_echo(self, arg: str) -> None:
        body = json.dumps({"method": self.command, "path": self.path,
                           "headers": {k.lower(): v for k, v in self.headers.items()},
                           "body": self.body.decode()}).encode()
        self.reply(200, body, Content_Type="application/json; charset=utf-8")

    def route_status(self, arg: str) -> None:
        self.reply(int(arg), f"status {arg}".encode())

    def route_redirect(self, arg: str) -> None:
        """/redirect/3 -> /redirect/2 -> ... -> /png, with ?status= for the redirect code."""
        hops = int(arg)
        status = self.query.get("status", "302")
        location = f"/redirect/{hops - 1}?status={status}" if hops > 1 else "/png"
        self.reply(int(status), b"", Location=location)

    def route_to(self, arg: str) -> None:
        """/to?url=...&status=302 redirects anywhere."""
        self.reply(int(self.query.get("status", "302")), b"", Location=self.query["url"])

    def route_cookie(self, arg: str) -> None:
        extra = {"Location": "/echo"} if arg == "redirect" else {}
        self.reply(302 if extra else 200, b"ok", Set_Cookie="session=secret; Path=/", **extra)

    def route_huge(self, arg: str) -> None:
        """5 MiB, with the length declared, missing (read until close) or chunked."""
        headers = {"declared": {"Content-Length": str(5 * MB)},
                   "undeclared": {}, "chunked": {"Transfer-Encoding": "chunked"}}[arg]
        self.send_response(200)
        for key, value in {"Connection": "close", **headers}.items():
            self.send_header(key, value)
        self.end_headers()
        block = b"x" * (64 * 1024)
        for _ in range(80):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block) if arg == "chunked"
                             else block)
        if arg == "chunked":
            self.wfile.write(b"0\r\n\r\n")

    def route_bomb(self, arg: str) -> None:
        self.reply(200, bomb(arg), Content_Encoding=arg, Content_Type="image/png")

    def route_gzip(self, arg: str) -> None:
        self.reply(200, gzip.compress(GZIP_TEXT), Content_Encoding="gzip")

    def route_lying(self, arg: str) -> None:
        """Declares 100 bytes, then keeps sending."""
        self.reply(200, b"a" * 100 + b"b" * 100_000, Content_Length="100")

    def route_conflicting(self, arg: str) -> None:
        """Two different lengths: a request-smuggling shape that urllib3 rejects."""
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.send_header("Content-Length", "5")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"hello")

    def route_short(self, arg: str) -> None:
        """Declares 1000 bytes, sends 10 and hangs up."""
        self.reply(200, b"0123456789", Content_Length="1000")

    def route_drip(self, arg: str) -> None:
        """A body that arrives one byte every 50 ms (each read succeeds; only a deadline
        across reads can stop it)."""
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self._drip(b"x")

    def route_drip_headers(self, arg: str) -> None:
        self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        self._drip(b"a")

    def _drip(self, byte: bytes) -> None:
        for _ in range(60):  # 3 s at most, then the handler thread ends
            self.wfile.write(byte)
            self.wfile.flush()
            time.sleep(0.05)

    def route_slow_redirect(self, arg: str) -> None:
        time.sleep(0.15)
        hops = int(arg)
        self.reply(302, b"", Location=f"/slow-redirect/{hops - 1}" if hops > 1 else "/png")


class Site(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int]):
        self.seen: list[dict] = []
        self.connections = 0
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN: a reverse DNS query we do not want
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def get_request(self) -> tuple:
        request = super().get_request()
        self.connections += 1
        return request


@contextlib.contextmanager
def serve(server: Site) -> Iterator[Site]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with serve(Site(("127.0.0.1", 0))) as server:
        yield server


@pytest.fixture
def base(site: Site) -> str:
    site.seen.clear()
    return f"http://127.0.0.1:{site.server_port}"


@pytest.fixture
def session() -> GuardedSession:
    return GuardedSession(OutboundPolicy(allowlist=LOCAL, timeout=5.0))


def session_with(**limits: object) -> GuardedSession:
    return GuardedSession(OutboundPolicy(allowlist=LOCAL, **limits))


class Trap:
    """A listener on a loopback address that is not allowlisted; it must never be reached."""

    def __init__(self, host: str):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def connections(self) -> int:
        count = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                conn, _ = self.sock.accept()
                conn.close()
                count += 1
        return count


@pytest.fixture
def trap() -> Iterator[Trap]:
    listener = Trap("127.0.0.2")
    yield listener
    listener.sock.close()


@pytest.fixture
def trap6() -> Iterator[Trap]:
    try:
        listener = Trap("::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    yield listener
    listener.sock.close()


def resolver(answers: dict[str, list[str]]) -> Callable[[str, int], list[str]]:
    """A resolver that answers from a table and records every question."""
    def resolve(host: str, port: int) -> list[str]:
        resolve.calls.append(host)  # type: ignore[attr-defined]
        return list(answers[host])
    resolve.calls = []  # type: ignore[attr-defined]
    return resolve


def refuses(exc: pytest.ExceptionInfo, *words: str) -> None:
    assert exc.value.code == "outbound_refused"
    for word in words:
        assert word in str(exc.value)


def no_lookup(host: str, port: int) -> list[str]:
    raise AssertionError(f"the resolver should not have been asked about {host}")


# --- fetching from the allowlisted site ------------------------------------------------------

def test_fetch_returns_the_png(session: GuardedSession, base: str, site: Site) -> None:
    assert session.fetch(f"{base}/png") == PNG
    headers = site.seen[-1]["headers"]
    assert headers["user-agent"] == "Pixelmerge/0.1 (+https://github.com/pixelmerge)"
    assert headers["host"] == f"127.0.0.1:{site.server_port}"


def test_request_returns_status_headers_content_and_url(session: GuardedSession,
                                                        base: str) -> None:
    response = session.request("GET", f"{base}/png")
    assert (response.status, response.ok, response.url) == (200, True, f"{base}/png")
    assert response.headers["CONTENT-TYPE"] == response.headers["content-type"] == "image/png"
    assert response.content == PNG


def test_request_sends_json_form_data_and_headers(session: GuardedSession, base: str) -> None:
    sent = session.request("POST", f"{base}/echo", json={"a": 1}, headers={"X-Key": "k"},
                           accept="application/json").json()
    assert sent["method"] == "POST" and json.loads(sent["body"]) == {"a": 1}
    assert sent["headers"]["content-type"] == "application/json"
    assert sent["headers"]["x-key"] == "k" and sent["headers"]["accept"] == "application/json"
    form = session.request("PUT", f"{base}/echo", data={"q": "a b"}).json()
    assert form["body"] == "q=a+b" and form["method"] == "PUT"


def test_caller_cannot_override_user_agent_host_or_encoding(session: GuardedSession,
                                                           base: str, site: Site) -> None:
    session.request("GET", f"{base}/echo", headers={
        "User-Agent": "evil", "Host": "internal.test", "Accept-Encoding": "br"})
    headers = site.seen[-1]["headers"]
    assert headers["user-agent"].startswith("Pixelmerge/")
    assert headers["host"] == f"127.0.0.1:{site.server_port}"
    assert headers["accept-encoding"] == "gzip, deflate"


def test_gzip_bodies_are_decoded(session: GuardedSession, base: str) -> None:
    assert session.fetch(f"{base}/gzip") == GZIP_TEXT


@pytest.mark.parametrize("status", [404, 500])
def test_fetch_raises_on_error_status(session: GuardedSession, base: str, status: int) -> None:
    with pytest.raises(OutboundError) as exc:
        session.fetch(f"{base}/status/{status}")
    assert exc.value.code == "outbound_failed" and exc.value.status == status
    assert f"GET {base}/status/{status} answered {status}" in str(exc.value)


def test_request_returns_error_status_without_raising(session: GuardedSession,
                                                      base: str) -> None:
    response = session.request("GET", f"{base}/status/404")
    assert (response.status, response.ok, response.text) == (404, False, "status 404")


def test_no_cookies_are_kept(session: GuardedSession, base: str, site: Site) -> None:
    session.fetch(f"{base}/cookie")
    session.fetch(f"{base}/echo")
    session.fetch(f"{base}/cookie/redirect")  # sets a cookie, then redirects to /echo
    assert all("cookie" not in seen["headers"] for seen in site.seen)


def test_environment_proxies_are_ignored(session: GuardedSession, base: str, trap: Trap,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = f"http://127.0.0.2:{trap.port}"
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert session.fetch(f"{base}/png") == PNG
    assert trap.connections() == 0


# --- refusals before any connection ----------------------------------------------------------

def test_default_policy_refuses_loopback_without_connecting(base: str, site: Site) -> None:
    before = site.connections
    with pytest.raises(OutboundRefused) as exc:
        GuardedSession(OutboundPolicy()).fetch(f"{base}/png")
    refuses(exc, f"refused {base}/png: 127.0.0.1 is a loopback address "
                 f"(not allowed for outbound requests)")
    assert site.connections == before


def test_refusal_message_names_url_and_reason(session: GuardedSession, trap: Trap) -> None:
    url = f"http://127.0.0.2:{trap.port}/x.png"
    with pytest.raises(OutboundRefused) as exc:
        session.fetch(url)
    assert str(exc.value) == (f"refused {url}: 127.0.0.2 is a loopback address "
                              f"(not allowed for outbound requests)")
    assert exc.value.url == url
    assert trap.connections() == 0


@pytest.mark.parametrize("host", [
    "2130706434",  # decimal 127.0.0.2
    "0x7f000002",
    "0X7F000002",
    "0177.0.0.2",  # octal first part
    "0177.0.0.02",
    "127.2",  # short form: the last part fills the remaining bytes
    "127.0.2",
    "0x7f.0.0.2",
    "127.0.0.2.",  # trailing dot
    "[::ffff:127.0.0.2]",
    "[::ffff:7f00:2]",
    "[0:0:0:0:0:FFFF:7F00:0002]",
])
def test_every_spelling_of_a_refused_address_gets_no_connection(
        session: GuardedSession, trap: Trap, host: str) -> None:
    with pytest.raises(OutboundRefused) as exc:
        session.fetch(f"http://{host}:{trap.port}/")
    refuses(exc, "127.0.0.2", "loopback")
    assert trap.connections() == 0


def test_decimal_host_is_parsed_not_resolved(trap: Trap) -> None:
    session = GuardedSession(OutboundPolicy(), resolver=no_lookup)
    with pytest.raises(OutboundRefused) as exc:
        session.fetch(f"http://2130706434:{trap.port}/")
    refuses(exc, "127.0.0.2 is a loopback address")
    assert trap.connections() == 0


def test_refuses_ipv6_loopback_without_connecting(session: GuardedSession,
                                                  trap6: Trap) -> None:
    for host in ("[::1]", "[0:0:0:0:0:0:0:1]", "[::0001]"):
        with pytest.raises(OutboundRefused) as exc:
            session.fetch(f"http://{host}:{trap6.port}/")
        refuses(exc, "::1 is a loopback address")
    assert trap6.connections() == 0


@pytest.mark.parametrize(("url", "reason"), [
    ("http://127.0.0.1/", "127.0.0.1 is a loopback address"),
    ("http://2130706433/", "127.0.0.1 is a loopback address"),
    ("http://0x7f000001/", "127.0.0.1 is a loopback address"),
    ("http://0177.0.0.1/", "127.0.0.1 is a loopback address"),
    ("http://127.1/", "127.0.0.1 is a loopback address"),
    ("http://127.0.0.1./", "127.0.0.1 is a loopback address"),
    ("http://%EF%BC%91%EF%BC%92%EF%BC%97.0.0.1/", "is not a valid hostname"),
    ("http://１２７.０.０.１/", "127.0.0.1 is a loopback address"),  # fullwidth digits
    ("http://[::1]/", "::1 is a loopback address"),
    ("http://[::ffff:127.0.0.1]/", "IPv4-mapped form of 127.0.0.1, a loopback"),
    ("http://[::127.0.0.1]/", "IPv4-compatible form of 127.0.0.1, a loopback"),
    ("http://[::8.8.8.8]/", "deprecated IPv4-compatible"),
    ("http://[64:ff9b::7f00:1]/", "NAT64 form of 127.0.0.1, a loopback"),
    ("http://[64:ff9b::a9fe:a9fe]/", "NAT64 form of 169.254.169.254, a cloud metadata"),
    ("http://[64:ff9b:1::a00:1]/", "local-use NAT64"),
    ("http://[2002:7f00:1::]/", "6to4 form of 127.0.0.1, a loopback"),
    ("http://[2002:a9fe:a9fe::1]/", "6to4 form of 169.254.169.254"),
    ("http://[2002:c0a8:101::1]/", "6to4 form of 192.168.1.1, a private (RFC 1918)"),
    ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "Teredo form of 192.0.2.45"),
    ("http://[fe80::1%25eth0]/", "link-local"),
    ("http://[FE80::1]/", "fe80::1 is a link-local address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
    ("http://[fd00:ec2::254]/", "fd00:ec2::254 is a cloud metadata address"),
    ("http://169.254.1.1/", "link-local"),
    ("http://10.0.0.1/", "10.0.0.1 is a private (RFC 1918) address"),
    ("http://172.16.0.1/", "private (RFC 1918)"),
    ("http://172.31.255.255/", "private (RFC 1918)"),
    ("http://192.168.1.1/", "private (RFC 1918)"),
    ("http://100.64.0.1/", "carrier-grade NAT"),
    ("http://100.100.100.200/", "cloud metadata"),
    ("http://0.0.0.0/", "0.0.0.0 is the unspecified address"),
    ("http://0/", "0.0.0.0 is the unspecified address"),
    ("http://0x/", "0.0.0.0 is the unspecified address"),
    ("http://0.1.2.3/", "'this network'"),
    ("http://[::]/", ":: is the unspecified address"),
    ("http://224.0.0.1/", "multicast"),
    ("http://239.255.255.250/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://255.255.255.255/", "reserved"),
    ("http://198.18.0.1/", "benchmarking"),
    ("http://192.0.2.1/", "documentation"),
    ("http://[2001:db8::1]/", "documentation"),
    ("http://192.0.0.170/", "not globally routable"),
    ("http://[fc00::1]/", "unique-local"),
    ("http://[fd12:3456::1]/", "unique-local"),
    ("http://[fec0::1]/", "site-local"),
    ("http://localhost/", "localhost resolves to 127.0.0.1, which is a loopback address"),
    ("http://LOCALHOST./x", "localhost resolves to 127.0.0.1"),
    ("http://api.localhost/", "loopback"),
])
def test_check_url_refuses_forbidden_addresses(url: str, reason: str) -> None:
    with pytest.raises(OutboundRefused) as exc:
        check_url(url, OutboundPolicy(), no_lookup)
    refuses(exc, f"refused {url}: ", reason)


@pytest.mark.parametrize(("url", "reason"), [
    ("file:///etc/passwd", "the file: scheme is not allowed"),
    ("ftp://example.test/x", "the ftp: scheme is not allowed"),
    ("gopher://example.test/", "the gopher: scheme is not allowed"),
    ("data:image/png;base64,AAAA", "the data: scheme is not allowed"),
    ("javascript:alert(1)", "the javascript: scheme is not allowed"),
    ("//example.test/x", "not an absolute http(s) URL"),
    ("/relative", "not an absolute http(s) URL"),
    ("", "not a URL"),
    ("http://user:pass@example.test/", "credentials"),
    ("http://user@example.test/", "credentials"),
    ("http://example.test\\@127.0.0.1/", "credentials"),
    ("http:///x", "has no host"),
    ("http://:80/", "has no host"),
    ("https://", "has no host"),
    ("http://example.test:0/", "port 0"),
    ("http://example.test:99999/", "not a valid URL"),
    ("http://example.test:http/", "not a valid URL"),
    ("http://exa mple.test/", "whitespace or control characters"),
    ("http://example.test/\r\nHost: x", "whitespace or control characters"),
    ("http://%31%32%37.0.0.1/", "not a valid hostname"),
    ("http://exa_mple..test/", "not a valid hostname"),
    ("http://1.2.3.999/", "1.2.3.999 is not a valid IPv4 address"),
    ("http://1.2.3.4.5/", "not a valid IPv4 address"),
    ("http://08.0.0.1/", "not a valid IPv4 address"),  # 8 is no octal digit
    ("http://example.123/", "not a valid IPv4 address"),
    ("http://[v1.x]/", "not a valid"),
])
def test_check_url_refuses_bad_urls(url: str, reason: str) -> None:
    with pytest.raises(OutboundRefused) as exc:
        check_url(url, OutboundPolicy(), no_lookup)
    refuses(exc, reason)


def test_refusals_do_not_repeat_credentials() -> None:
    with pytest.raises(OutboundRefused) as exc:
        check_url("https://admin:hunter2@example.test/x", OutboundPolicy(), no_lookup)
    assert "hunter2" not in str(exc.value)
    assert "refused https://***@example.test/x: URLs with credentials" in str(exc.value)


def test_check_url_returns_the_checked_addresses() -> None:
    resolve = resolver({"images.test": ["8.8.8.8", "::ffff:8.8.4.4", "8.8.8.8",
                                        "2001:4860:4860::8888"]})
    assert check_url("HTTPS://Images.Test./a.png", OutboundPolicy(), resolve) == [
        "8.8.8.8", "8.8.4.4", "2001:4860:4860::8888"]
    assert resolve.calls == ["images.test"]
    assert check_url("http://[64:ff9b::808:808]/", OutboundPolicy(), no_lookup) == [
        "64:ff9b::808:808"]


def test_every_resolved_address_must_pass() -> None:
    resolve = resolver({"mixed.test": ["8.8.8.8", "10.1.2.3"]})
    with pytest.raises(OutboundRefused) as exc:
        check_url("http://mixed.test/", OutboundPolicy(), resolve)
    refuses(exc, "mixed.test resolves to 10.1.2.3, which is a private (RFC 1918) address")


@pytest.mark.parametrize("answer", ["127.0.0.1", "169.254.169.254", "::1", "fe80::1",
                                    "::ffff:10.0.0.1", "fd00:ec2::254"])
def test_names_resolving_to_forbidden_addresses_are_refused(answer: str) -> None:
    with pytest.raises(OutboundRefused) as exc:
        check_url("http://sneaky.test/", OutboundPolicy(), resolver({"sneaky.test": [answer]}))
    refuses(exc, f"sneaky.test resolves to {ipaddress.ip_address(answer)}")


def test_idn_hosts_are_resolved_in_ascii() -> None:
    resolve = resolver({"xn--bcher-kva.test": ["8.8.8.8"]})
    assert check_url("http://Bücher.test/", OutboundPolicy(), resolve) == ["8.8.8.8"]


def test_resolver_failures_are_outbound_errors() -> None:
    def broken(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(OutboundError) as exc:
        check_url("http://nowhere.test/", OutboundPolicy(), broken)
    assert exc.value.code == "outbound_failed" and "cannot resolve nowhere.test" in str(exc.value)
    with pytest.raises(OutboundError, match="no addresses"):
        check_url("http://empty.test/", OutboundPolicy(), resolver({"empty.test": []}))
    with pytest.raises(OutboundRefused, match="invalid address"):
        check_url("http://odd.test/", OutboundPolicy(), resolver({"odd.test": ["nonsense"]}))


def test_localhost_names_never_reach_the_resolver() -> None:
    with pytest.raises(OutboundRefused):
        check_url("http://localhost/", OutboundPolicy(), no_lookup)
    with pytest.raises(OutboundRefused):  # and not the system resolver (DNS) either
        check_url("http://db.localhost/", OutboundPolicy())


# --- pinning and DNS rebinding ---------------------------------------------------------------

def rebinding(*answers: str) -> Callable[[str, int], list[str]]:
    """A resolver that gives the next answer on every call, as a rebinding attacker's DNS."""
    remaining = list(answers)

    def resolve(host: str, port: int) -> list[str]:
        resolve.calls += 1  # type: ignore[attr-defined]
        return [remaining.pop(0)]
    resolve.calls = 0  # type: ignore[attr-defined]
    return resolve


def test_connection_goes_to_the_checked_address(site: Site, trap: Trap) -> None:
    resolve = rebinding("127.0.0.1", "127.0.0.2", "127.0.0.2")
    session = GuardedSession(OutboundPolicy(allowlist=LOCAL), resolver=resolve)
    port = site.server_port
    assert session.fetch(f"http://rebind.test:{port}/png") == PNG
    assert resolve.calls == 1  # resolved once; nobody asked again before connecting
    assert site.seen[-1]["headers"]["host"] == f"rebind.test:{port}"
    assert trap.connections() == 0


def test_rebinding_to_a_refused_address_is_refused(site: Site, trap: Trap) -> None:
    resolve = rebinding("127.0.0.2", "127.0.0.1")
    session = GuardedSession(OutboundPolicy(allowlist=LOCAL), resolver=resolve)
    before = site.connections
    with pytest.raises(OutboundRefused) as exc:
        session.fetch(f"http://rebind.test:{trap.port}/png")
    refuses(exc, "rebind.test resolves to 127.0.0.2, which is a loopback address")
    assert (resolve.calls, trap.connections(), site.connections) == (1, 0, before)


def test_connection_never_does_its_own_lookup(site: Site) -> None:
    # the loopback_only guard fails the test if anything resolves "pinned.invalid" itself
    session = GuardedSession(OutboundPolicy(allowlist=LOCAL),
                             resolver=resolver({"pinned.invalid": ["127.0.0.1"]}))
    assert session.fetch(f"http://pinned.invalid:{site.server_port}/png") == PNG


def test_next_checked_address_is_tried_when_one_fails(site: Site) -> None:
    # nothing listens on 127.0.0.3 at the site's port: refused, then the next address works
    policy = OutboundPolicy(allowlist=(*LOCAL, "127.0.0.3/32"))
    session = GuardedSession(policy, resolver=resolver({"two.test": ["127.0.0.3", "127.0.0.1"]}))
    assert session.fetch(f"http://two.test:{site.server_port}/png") == PNG


def test_connection_refused_is_an_outbound_error() -> None:
    closed = Trap("127.0.0.1")
    closed.sock.close()  # nothing listens on this port of 127.0.0.1 any more
    with pytest.raises(OutboundError, match="connection was refused") as exc:
        session_with().fetch(f"http://127.0.0.1:{closed.port}/png")
    assert exc.value.code == "outbound_failed"


# --- the allowlist ---------------------------------------------------------------------------

def test_from_config_parses_hosts_wildcards_and_cidrs() -> None:
    policy = OutboundPolicy.from_config(" images.test, *.CDN.test ,127.0.0.1/32, ::1/128,,",
                                        max_bytes=10, timeout=2)
    assert policy.allowlist == ("images.test", "*.CDN.test", "127.0.0.1/32", "::1/128")
    assert (policy.max_bytes, policy.timeout) == (10, 2)
    assert policy.allows_host("images.test") and policy.allows_host("a.b.cdn.test")
    assert not policy.allows_host("cdn.test") and not policy.allows_host("evilcdn.test")
    assert not policy.allows_host("images.test.evil.test")
    assert policy.allows_address(ipaddress.ip_address("::1"))
    assert not policy.allows_address(ipaddress.ip_address("127.0.0.2"))


@pytest.mark.parametrize("entry", ["*.", "http://images.test", "10.0.0.0/33", "1.2.3",
                                   "images.test/path", "a b"])
def test_from_config_rejects_bad_entries(entry: str) -> None:
    with pytest.raises(ValueError, match="OUTBOUND_ALLOWLIST entry"):
        OutboundPolicy.from_config(entry)


def test_policy_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        OutboundPolicy(max_bytes=0)
    with pytest.raises(ValueError):
        OutboundPolicy(max_redirects=-1)


def test_cidr_entries_match_resolved_addresses() -> None:
    policy = OutboundPolicy(allowlist=("10.20.0.0/16",))
    resolve = resolver({"intranet.test": ["10.20.3.4"], "other.test": ["10.21.0.1"]})
    assert check_url("http://intranet.test/", policy, resolve) == ["10.20.3.4"]
    assert check_url("http://10.20.9.9/", policy, no_lookup) == ["10.20.9.9"]
    with pytest.raises(OutboundRefused):
        check_url("http://other.test/", policy, resolve)


def test_ipv4_cidr_also_covers_its_mapped_ipv6_form() -> None:
    assert check_url("http://[::ffff:127.0.0.1]/", OutboundPolicy(allowlist=LOCAL),
                     no_lookup) == ["127.0.0.1"]


def test_host_entries_open_a_name_whatever_it_resolves_to(site: Site) -> None:
    resolve = rebinding("127.0.0.1")
    policy = OutboundPolicy(allowlist=("images.test", "*.cdn.test"))
    session = GuardedSession(policy, resolver=resolve)
    port = site.server_port
    assert session.fetch(f"http://images.test:{port}/png") == PNG  # 127.0.0.1 is not listed
    assert site.seen[-1]["headers"]["host"] == f"images.test:{port}"
    assert resolve.calls == 1  # still resolved once and pinned
    with pytest.raises(OutboundRefused):  # the address itself is still not open
        session.fetch(f"http://127.0.0.1:{port}/png")
    refused = GuardedSession(policy, resolver=resolver({"cdn.test": ["127.0.0.1"]}))
    with pytest.raises(OutboundRefused):  # "*.cdn.test" does not cover cdn.test itself
        refused.fetch(f"http://cdn.test:{port}/png")


# --- redirects -------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_chains_are_followed(session: GuardedSession, base: str, site: Site,
                                      status: int) -> None:
    response = session.request("GET", f"{base}/redirect/3?status={status}")
    assert (response.status, response.content, response.url) == (200, PNG, f"{base}/png")
    assert [seen["path"] for seen in site.seen] == [
        f"/redirect/3?status={status}", f"/redirect/2?status={status}",
        f"/redirect/1?status={status}", "/png"]


def test_too_many_redirects(base: str) -> None:
    with pytest.raises(OutboundError, match="more than 2 redirects") as exc:
        session_with(max_redirects=2).fetch(f"{base}/redirect/3")
    assert exc.value.code == "outbound_failed"
    assert session_with(max_redirects=3).fetch(f"{base}/redirect/3") == PNG


def test_redirect_to_a_refused_address_is_refused(session: GuardedSession, base: str,
                                                  trap: Trap) -> None:
    target = f"http://127.0.0.2:{trap.port}/secret"
    url = f"{base}/to?url={quote(target)}"
    with pytest.raises(OutboundRefused) as exc:
        session.fetch(url)
    refuses(exc, f"refused redirect from {url} to {target}: 127.0.0.2 is a loopback address")
    assert trap.connections() == 0


@pytest.mark.parametrize(("location", "reason"), [
    ("file:///etc/passwd", "the file: scheme is not allowed"),
    ("gopher://127.0.0.1:70/", "the gopher: scheme is not allowed"),
    ("http://user:pw@127.0.0.1/", "credentials"),  # shown as http://***@127.0.0.1/
    ("http://0x7f000002/", "127.0.0.2 is a loopback address"),
    ("http://[::1]/", "::1 is a loopback address"),
])
def test_redirect_targets_are_checked_like_urls(session: GuardedSession, base: str,
                                                location: str, reason: str) -> None:
    with pytest.raises(OutboundRefused) as exc:
        session.fetch(f"{base}/to?url={quote(location)}")
    refuses(exc, f"to {location.replace('user:pw', '***')}: ", reason)


def test_redirect_by_name_is_resolved_and_checked_again(site: Site, trap: Trap) -> None:
    resolve = resolver({"evil.test": ["127.0.0.2"]})
    session = GuardedSession(OutboundPolicy(allowlist=LOCAL), resolver=resolve)
    base = f"http://127.0.0.1:{site.server_port}"
    with pytest.raises(OutboundRefused, match="evil.test resolves to 127.0.0.2"):
        session.fetch(f"{base}/to?url={quote(f'http://evil.test:{trap.port}/')}")
    assert resolve.calls == ["evil.test"] and trap.connections() == 0


def test_post_becomes_get_on_303_and_stays_post_on_307(session: GuardedSession,
                                                       base: str) -> None:
    see_other = session.request("POST", f"{base}/to?url=/echo&status=303", json={"a": 1})
    assert see_other.json()["method"] == "GET" and see_other.json()["body"] == ""
    temporary = session.request("POST", f"{base}/to?url=/echo&status=307", json={"a": 1})
    assert temporary.json()["method"] == "POST" and temporary.json()["body"] == '{"a":1}'


def test_caller_headers_are_dropped_when_a_redirect_leaves_the_origin(
        session: GuardedSession, base: str, site: Site) -> None:
    same = session.request("GET", f"{base}/to?url=/echo", headers={"Authorization": "t"})
    assert same.json()["headers"]["authorization"] == "t"
    other = f"http://[::ffff:127.0.0.1]:{site.server_port}/echo"  # another origin, same site
    moved = session.request("GET", f"{base}/to?url={quote(other)}",
                            headers={"Authorization": "t"})
    assert "authorization" not in moved.json()["headers"]


# --- size ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["declared", "undeclared", "chunked"])
def test_bodies_are_cut_at_max_bytes(base: str, kind: str) -> None:
    with pytest.raises(OutboundTooLarge) as exc:
        session_with(max_bytes=MB).fetch(f"{base}/huge/{kind}")
    assert exc.value.code == "outbound_too_large"
    assert isinstance(exc.value, ResourceError) and isinstance(exc.value, LimitError)
    assert f"{base}/huge/{kind}" in str(exc.value) and "1,048,576" in str(exc.value)


def test_a_body_of_exactly_max_bytes_passes(base: str) -> None:
    assert session_with(max_bytes=len(PNG)).fetch(f"{base}/png") == PNG
    with pytest.raises(OutboundTooLarge):
        session_with(max_bytes=len(PNG) - 1).fetch(f"{base}/png")


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_decompression_bombs_are_cut_at_max_bytes_of_decoded_data(base: str,
                                                                  encoding: str) -> None:
    assert len(bomb(encoding)) < MB  # the wire size is under the limit; the decoded is not
    tracing = tracemalloc.is_tracing()
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        before = tracemalloc.get_traced_memory()[0]
        with pytest.raises(OutboundTooLarge):
            session_with(max_bytes=MB).fetch(f"{base}/bomb/{encoding}")
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        if not tracing:
            tracemalloc.stop()
    assert peak < 8 * MB  # the 32 MiB were never inflated at once


def test_a_lying_content_length_cannot_send_more(session: GuardedSession, base: str) -> None:
    assert session.fetch(f"{base}/lying") == b"a" * 100


def test_a_body_shorter_than_declared_fails(session: GuardedSession, base: str) -> None:
    with pytest.raises(OutboundError) as exc:
        session.fetch(f"{base}/short")
    assert exc.value.code == "outbound_failed"


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_a_rejected_response_leaves_no_socket_open(session: GuardedSession, base: str) -> None:
    before = open_files()
    with pytest.raises(OutboundError, match="Content-Length") as exc:
        session.fetch(f"{base}/conflicting")
    assert exc.value.code == "outbound_failed"
    # the error is alive, and through its traceback so is urllib3's half-made response; the
    # socket must be closed all the same (the server side may take a moment to close its end)
    settle = time.monotonic() + 2
    while open_files() > before and time.monotonic() < settle:
        time.sleep(0.01)
    assert open_files() <= before


# --- time ------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/drip", "/drip-headers"])
def test_slow_drip_is_stopped_by_the_total_deadline(base: str, path: str) -> None:
    started = time.monotonic()
    with pytest.raises(OutboundError) as exc:
        session_with(timeout=0.5).fetch(base + path)
    elapsed = time.monotonic() - started
    assert exc.value.code == "outbound_failed" and "timed out" in str(exc.value)
    assert 0.4 < elapsed < 1.5


def test_the_deadline_covers_the_whole_redirect_chain(base: str) -> None:
    # five hops of 0.15 s each: every hop is quick, the chain is not
    started = time.monotonic()
    with pytest.raises(OutboundError, match="timed out"):
        session_with(timeout=0.5).fetch(f"{base}/slow-redirect/5")
    assert time.monotonic() - started < 1.2
    assert session_with(timeout=3).fetch(f"{base}/slow-redirect/2") == PNG


def test_connect_timeout() -> None:
    # a listener with a full accept queue: the kernel drops further SYNs, so connect hangs
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))
    try:
        started = time.monotonic()
        with pytest.raises(OutboundError, match="could not connect to 127.0.0.1 within 0.3 s"):
            session_with(connect_timeout=0.3, timeout=5).fetch(f"http://127.0.0.1:{port}/")
        assert time.monotonic() - started < 1.5
    finally:
        filler.close()
        listener.close()


# --- TLS: pinned, yet SNI and certificate checks use the hostname ----------------------------

@pytest.fixture(scope="module")
def tls_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, Path, list]]:
    x509 = pytest.importorskip("cryptography.x509")
    folder = tmp_path_factory.mktemp("tls")
    ca_pem, cert_pem, key_pem = _certificates(x509, "pinned.test")
    (folder / "ca.pem").write_bytes(ca_pem)
    (folder / "cert.pem").write_bytes(cert_pem)
    (folder / "key.pem").write_bytes(key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    names: list = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    server = Site(("127.0.0.1", 0))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with serve(server):
        yield server, folder / "ca.pem", names


def _certificates(x509, hostname: str) -> tuple[bytes, bytes, bytes]:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def build(subject: str, issuer, key, signer, extensions) -> x509.Certificate:
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(issuer).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=1)))
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Pixelmerge test CA")])
    ca = build("Pixelmerge test CA", ca_name, ca_key, ca_key, [
        (x509.BasicConstraints(ca=True, path_length=None), True),
        (x509.KeyUsage(False, False, False, False, False, True, True, False, False), True),
        (x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)])
    leaf = build(hostname, ca_name, key, ca_key, [
        (x509.SubjectAlternativeName([x509.DNSName(hostname)]), False),
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        (x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False)])
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return ca.public_bytes(pem), leaf.public_bytes(pem), key_pem


def test_https_is_pinned_but_verified_against_the_hostname(tls_site: tuple) -> None:
    server, ca, names = tls_site
    port = server.server_port
    answers = {"pinned.test": ["127.0.0.1"], "wrong.test": ["127.0.0.1"]}
    session = GuardedSession(OutboundPolicy(allowlist=LOCAL), resolver=resolver(answers),
                             ca_certs=str(ca))
    assert session.fetch(f"https://pinned.test:{port}/png") == PNG
    assert names[-1] == "pinned.test"  # SNI carried the name, not the pinned address
    assert server.seen[-1]["headers"]["host"] == f"pinned.test:{port}"
    with pytest.raises(OutboundError, match="wrong.test") as exc:  # the cert is for pinned.test
        session.fetch(f"https://wrong.test:{port}/png")
    assert exc.value.code == "outbound_failed" and "certificate" in str(exc.value).lower()
    with pytest.raises(OutboundError, match="certificate"):  # nor is it valid for the address
        session.fetch(f"https://127.0.0.1:{port}/png")


# --- through the renderer --------------------------------------------------------------------

def test_renderer_reports_outbound_errors_with_code_and_layer(trap: Trap, base: str) -> None:
    session = session_with(max_bytes=MB)
    with pytest.raises(ResourceError) as exc:
        read_source(f"http://127.0.0.2:{trap.port}/a.png", fetch=session.fetch, assets=None,
                    max_bytes=MB, path="layers[0].src")
    assert (exc.value.code, exc.value.path) == ("outbound_refused", "layers[0].src")
    assert "127.0.0.2 is a loopback address" in str(exc.value)
    with pytest.raises(LimitError) as too_large:
        read_source(f"{base}/huge/chunked", fetch=session.fetch, assets=None, max_bytes=MB,
                    path="layers[1].src")
    assert (too_large.value.code, too_large.value.path) == ("outbound_too_large",
                                                            "layers[1].src")
    assert read_source(f"{base}/png", fetch=session.fetch, assets=None, max_bytes=MB,
                       path="layers[2].src") == PNG
