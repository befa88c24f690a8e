"""A JSON endpoint on loopback that a test (or a benchmark) changes at will: the stand-in for
a customer's API behind a live banner. It honours ``If-None-Match`` like a real server, and can
answer slowly, with another status or content type, or with a redirect."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Feed:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.reset()
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                feed._answer(self)

            def do_POST(self) -> None:  # noqa: N802
                feed._answer(self)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def reset(self) -> None:
        with self._lock:
            self.body = b"{}"
            self.content_type = "application/json"
            self.status = 200
            self.delay = 0.0
            self.location: str | None = None
            self.etags = True
            self.requests.clear()

    def url(self, path: str = "/feed") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def set(self, data: Any) -> None:
        with self._lock:
            self.body = json.dumps(data).encode()
            self.content_type, self.status = "application/json", 200

    def set_raw(self, body: bytes, content_type: str, status: int = 200) -> None:
        with self._lock:
            self.body, self.content_type, self.status = body, content_type, status

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._reply(handler)  # a client that gave up (a timeout under test) is no error

    def _reply(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        sent = handler.rfile.read(length) if length else b""
        with self._lock:
            self.requests.append({"method": handler.command, "path": handler.path,
                                  "headers": dict(handler.headers), "body": sent})
            body, kind, status = self.body, self.content_type, self.status
            delay, location, etag = self.delay, self.location, self.etags and self.etag
        if delay:
            time.sleep(delay)
        if location:
            handler.send_response(302)
            handler.send_header("Location", location)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if etag and status == 200 and handler.headers.get("If-None-Match") == etag:
            handler.send_response(304)
            handler.send_header("ETag", etag)
            handler.end_headers()
            return
        handler.send_response(status)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(body)))
        if etag:
            handler.send_header("ETag", etag)
        handler.end_headers()
        handler.wfile.write(body)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
