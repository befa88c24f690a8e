"""A real S3-compatible HTTP server on loopback for tests: moto's server in a child process, so its
state cannot be reset by ``mock_aws`` elsewhere in the session and its warnings are not ours.

Use it from a test module in this folder with ``from s3server import s3_server``. The fixture
yields ``(endpoint_url, bucket)`` and, for the whole session, points boto3 at dummy credentials
and at the server (``AWS_ENDPOINT_URL``), so that no request can leave 127.0.0.1.
``loopback_only`` additionally fails a test that opens a connection anywhere else."""

from __future__ import annotations

import http.client
import ipaddress
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest

BUCKET = "pixelmerge-test"
HOST = "127.0.0.1"
START_TIMEOUT = 20.0

DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",  # never probe 169.254.169.254 for credentials
    "AWS_CONFIG_FILE": os.devnull,  # a developer's ~/.aws must not change endpoints or creds
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
UNSET_ENV = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
             "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def free_port() -> int:
    """A loopback port nobody listens on (right now)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def use_dummy_aws(mp: pytest.MonkeyPatch, endpoint_url: str) -> None:
    for name, value in DUMMY_AWS_ENV.items():
        mp.setenv(name, value)
    for name in UNSET_ENV:
        mp.delenv(name, raising=False)
    # Even a client made without endpoint_url talks to the local server.
    mp.setenv("AWS_ENDPOINT_URL", endpoint_url)
    mp.setenv("AWS_ENDPOINT_URL_S3", endpoint_url)


@contextmanager
def run_s3_server() -> Iterator[str]:
    """Start moto's server on a free loopback port; yields its endpoint URL."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET_ENV} | DUMMY_AWS_ENV
    with tempfile.TemporaryFile() as log:
        for _ in range(3):  # another process may take the free port before the server binds it
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env | {"MOTO_PORT": str(port)})
            try:
                if _wait_ready(proc, port):
                    yield f"http://{HOST}:{port}"
                    return
            finally:
                _stop(proc)
        log.seek(0)
        raise RuntimeError(f"moto server did not start:\n{log.read().decode(errors='replace')}")


def _wait_ready(proc: subprocess.Popen, port: int) -> bool:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and proc.poll() is None:
        conn = http.client.HTTPConnection(HOST, port, timeout=1)
        try:
            conn.request("GET", "/moto-api/")  # proves it is moto, not whoever else took the port
            if conn.getresponse().status == 200:
                return True
        except OSError:
            time.sleep(0.05)
        finally:
            conn.close()
    return False


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def s3_client(endpoint_url: str) -> Any:
    """A plain boto3 client for looking behind the storage layer."""
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url,
                                          region_name="us-east-1")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[tuple[str, str]]:
    """``(endpoint_url, bucket)`` of a running local S3 server with an empty bucket."""
    with pytest.MonkeyPatch.context() as mp, run_s3_server() as endpoint_url:
        use_dummy_aws(mp, endpoint_url)
        s3_client(endpoint_url).create_bucket(Bucket=BUCKET)
        yield endpoint_url, BUCKET


def _is_loopback(host: Any) -> bool:
    if host in ("localhost", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Refuses (and records) any DNS lookup or connection to a host that is not loopback."""
    attempts: list[str] = []
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_loopback(host.decode() if isinstance(host, bytes) else host):
            attempts.append(f"lookup {host}")
            raise OSError(f"test refused a lookup of {host}: loopback only")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            attempts.append(f"connect {address}")
            raise OSError(f"test refused a connection to {address}: loopback only")
        return real_connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    yield attempts
    assert not attempts, f"tests must stay on loopback: {attempts}"
