"""The tests' HTTP client of a running server, and the password their accounts get. (A module
of its own: test files import it by name, which ``conftest`` is not safe for, as every test
folder has one.)"""

from __future__ import annotations

import requests

PASSWORD = "correct horse battery"


OUTSIDE_API = ("/api/", "/r/", "/u/", "/healthz", "/readyz", "/metrics", "/openapi.json",
               "/docs")


class Api:
    """A client of the running server: ``api.post("/renders", json=...)`` under /api/v1."""

    def __init__(self, base: str, token: str | None):
        self.base = base
        self.session = requests.Session()
        self.token = token

    def url(self, path: str) -> str:
        if path.startswith("http"):
            return path
        return self.base + (path if path.startswith(OUTSIDE_API) else "/api/v1" + path)

    def request(self, method: str, path: str, *, token: str | None = "default", **kwargs):
        headers = dict(kwargs.pop("headers", {}) or {})
        token = self.token if token == "default" else token
        if token is not None:
            headers.setdefault("Authorization", f"Bearer {token}")
        return self.session.request(method, self.url(path), headers=headers, timeout=60,
                                    **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)

    def put(self, path, **kwargs):
        return self.request("PUT", path, **kwargs)

    def delete(self, path, **kwargs):
        return self.request("DELETE", path, **kwargs)
