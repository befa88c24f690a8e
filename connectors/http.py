"""The one guarded outbound HTTP session (SPEC 8): every request Pixelmerge makes on behalf of a
user — JSON sources, image layers, HTML resources, webhook deliveries — goes through here.

What it guarantees:

* http and https only; no credentials in URLs; hosts in every legacy spelling are parsed here
  (decimal, hex, octal, short IPv4 forms; bracketed IPv6 with zone ids) instead of being handed
  to ``getaddrinfo``, which would accept them too.
* The host is resolved once, every address is checked, and the connection is made to a checked
  address (pinned), while the Host header, TLS SNI and certificate checks keep the hostname. A
  second DNS answer (rebinding) never reaches a socket.
* Loopback, private, carrier-grade NAT, link-local and metadata, multicast, unspecified,
  reserved, benchmark, documentation and unique-local addresses are refused, including IPv6
  forms that embed a forbidden IPv4 address (mapped, compatible, NAT64, 6to4, Teredo); anything
  that is not globally routable is refused. ``OUTBOUND_ALLOWLIST`` opens hosts and CIDRs.
* Every redirect is checked by the same rules before it is followed.
* Bodies are streamed and cut at ``max_bytes`` of *decoded* data (gzip bombs included); one
  deadline covers connecting, redirects and slow-drip bodies.
* No proxies from the environment, no cookie jar, a fixed User-Agent.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json as jsonlib
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlencode, urljoin, urlsplit

import certifi
import idna
import urllib3
from urllib3 import HTTPHeaderDict
from urllib3.connection import HTTPConnection, HTTPSConnection

from renderer.errors import LimitError, ResourceError

__all__ = [
    "GuardedSession",
    "OutboundError",
    "OutboundPolicy",
    "OutboundRefused",
    "OutboundTooLarge",
    "Response",
    "check_url",
    "system_resolver",
]

Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_PORTS = {"http": 80, "https": 443}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
# Headers the session owns: the caller cannot turn on encodings we do not bound, or lie about
# the Host the connection was checked for.
_OWN_HEADERS = frozenset({"host", "user-agent", "accept-encoding", "connection",
                          "content-length", "transfer-encoding"})
# RFC 6761: these names mean this machine; answering them here keeps them off the DNS.
_LOCALHOST_ANSWER = ("127.0.0.1", "::1")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMBER = re.compile(r"0x[0-9a-f]*|[0-9]+")
_METHOD = re.compile(r"[A-Z]+")
_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#]*@")


# --- errors ----------------------------------------------------------------------------------

class OutboundError(ResourceError):
    """An outbound request failed: network, TLS, timeout or a non-2xx answer to ``fetch``."""

    code = "outbound_failed"

    def __init__(self, message: str, *, path: str | None = None, code: str | None = None,
                 url: str | None = None, status: int | None = None):
        super().__init__(message, path=path, code=code)
        self.url = url
        self.status = status


class OutboundRefused(OutboundError):
    """The policy refused a URL or a redirect before any connection was opened."""

    code = "outbound_refused"


class OutboundTooLarge(OutboundError, LimitError):
    """The (decoded) body is larger than ``max_bytes``; also a ``LimitError``."""

    code = "outbound_too_large"


class _Refusal(Exception):
    """Why a URL is refused; turned into :class:`OutboundRefused` naming the URL."""


# --- policy ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class OutboundPolicy:
    """What outbound requests may reach, and how much and how long they may take."""

    allowlist: tuple[str, ...] = ()  # hostnames, "*.domain" and CIDRs ("127.0.0.1/32")
    max_bytes: int = 20 * 1024 * 1024
    timeout: float = 10.0  # seconds for one request, redirects and body included
    connect_timeout: float = 3.0
    max_redirects: int = 5
    user_agent: str = "Pixelmerge/0.1 (+https://github.com/pixelmerge)"
    _hosts: frozenset[str] = field(init=False, repr=False, compare=False)
    _suffixes: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.timeout <= 0 or self.connect_timeout <= 0:
            raise ValueError("max_bytes, timeout and connect_timeout must be positive")
        if self.max_redirects < 0:
            raise ValueError("max_redirects must not be negative")
        entries = tuple(entry.strip() for entry in self.allowlist if entry.strip())
        hosts, suffixes, networks = _parse_allowlist(entries)
        object.__setattr__(self, "allowlist", entries)
        object.__setattr__(self, "_hosts", frozenset(hosts))
        object.__setattr__(self, "_suffixes", tuple(suffixes))
        object.__setattr__(self, "_networks", tuple(networks))

    @classmethod
    def from_config(cls, allowlist: str | Iterable[str] = "", **limits: Any) -> OutboundPolicy:
        """From ``OUTBOUND_ALLOWLIST`` (comma-separated) and the limits by field name."""
        entries = allowlist.split(",") if isinstance(allowlist, str) else list(allowlist)
        return cls(allowlist=tuple(entries), **limits)

    def allows_host(self, host: str) -> bool:
        """A host entry matches the name exactly; ``*.cdn.example.com`` matches its subdomains
        (not ``cdn.example.com`` itself)."""
        return host in self._hosts or host.endswith(self._suffixes)

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self._networks)


def _parse_allowlist(entries: Iterable[str]) -> tuple[list[str], list[str], list]:
    hosts: list[str] = []
    suffixes: list[str] = []
    networks: list = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
            continue
        except ValueError:
            pass
        name = _allowlist_name(entry)
        if entry.startswith("*."):
            suffixes.append("." + name)
        else:
            hosts.append(name)
    return hosts, suffixes, networks


def _allowlist_name(entry: str) -> str:
    pattern = entry[2:] if entry.startswith("*.") else entry
    try:
        name = _normalize_name(pattern)
    except _Refusal:
        name = ""
    if not name or _NUMBER.fullmatch(name.rsplit(".", 1)[-1]):
        raise ValueError(f"OUTBOUND_ALLOWLIST entry {entry!r} is not a hostname, a "
                         f"'*.domain' pattern or a CIDR")
    return name


# --- addresses -------------------------------------------------------------------------------

def _networks(*cidrs: str) -> tuple:
    return tuple(ipaddress.ip_network(cidr) for cidr in cidrs)


_METADATA = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200"))
# Named so refusals say what the address is; anything else not globally routable is still
# refused by the ``is_global`` check after these.
_NAMED = (
    ("a 'this network' (0.0.0.0/8) address", _networks("0.0.0.0/8")),
    ("a private (RFC 1918) address", _networks("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")),
    ("a carrier-grade NAT (100.64.0.0/10) address", _networks("100.64.0.0/10")),
    ("a benchmarking (198.18.0.0/15) address", _networks("198.18.0.0/15")),
    ("a documentation address", _networks("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24",
                                          "2001:db8::/32", "3fff::/20")),
    ("a reserved (240.0.0.0/4) address", _networks("240.0.0.0/4")),
    ("a unique-local (fc00::/7) address", _networks("fc00::/7")),
    ("a site-local (fec0::/10) address", _networks("fec0::/10")),
    ("a local-use NAT64 (64:ff9b:1::/48) address", _networks("64:ff9b:1::/48")),
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_COMPATIBLE = ipaddress.ip_network("::/96")


def address_problem(address: IPAddress) -> str | None:
    """Why outbound requests may not go to ``address``, or None if it is globally routable.
    Ignores the allowlist."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        form, ipv4 = embedded
        inner = address_problem(ipv4)
        if inner:
            return f"{form} form of {ipv4}, {inner}"
        if form == "an IPv4-mapped":  # it is that IPv4 address, which is fine
            return None
        if form == "an IPv4-compatible":
            return "a deprecated IPv4-compatible address"
    return _direct_problem(address)


def _direct_problem(address: IPAddress) -> str | None:
    if address in _METADATA:
        return "a cloud metadata address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:  # is_global says True for most multicast ranges
        return "a multicast address"
    if getattr(address, "scope_id", None):
        return "an address with a zone id"
    for label, networks in _NAMED:
        if any(address in network for network in networks):
            return label
    if not address.is_global:
        return "an address that is not globally routable"
    return None


def _embedded_ipv4(address: IPAddress) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 address carries, and the form it uses."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    bare = ipaddress.IPv6Address(int(address))  # without a zone id, for the range tests
    low32 = ipaddress.IPv4Address(int(bare) & 0xFFFFFFFF)
    if bare.ipv4_mapped is not None:
        return "an IPv4-mapped", bare.ipv4_mapped
    if bare in _NAT64:
        return "a NAT64", low32
    if bare.sixtofour is not None:
        return "a 6to4", bare.sixtofour
    if bare.teredo is not None:
        return "a Teredo", bare.teredo[1]
    if bare in _COMPATIBLE and int(bare) > 1:  # :: and ::1 are themselves, not embeddings
        return "an IPv4-compatible", low32
    return None


def _connectable(address: IPAddress) -> IPAddress:
    """IPv4-mapped addresses are IPv4 addresses: check and connect to them as such."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


# --- URLs ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Target:
    url: str  # as given, for messages and Response.url
    scheme: str
    host: str  # ASCII hostname or canonical IP, no brackets: Host header, SNI, cert checks
    port: int
    path: str  # request target: path and query
    addresses: tuple[str, ...] = ()  # checked, to connect to

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for ``host`` (one DNS lookup)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def check_url(url: str, policy: OutboundPolicy, resolver: Resolver | None = None) -> list[str]:
    """Validate scheme, host and port, resolve the host once and check every address.

    Returns the allowed addresses to connect to; raises :class:`OutboundRefused` naming the URL
    and the reason, or :class:`OutboundError` when the name does not resolve."""
    return list(_inspect(url, policy, resolver or system_resolver).addresses)


def _inspect(url: str, policy: OutboundPolicy, resolver: Resolver,
             redirected_from: str | None = None) -> _Target:
    try:
        target, literal = _parse(url)
        addresses = _addresses(target, literal, policy, resolver)
    except _Refusal as exc:
        what = f"redirect from {_show(redirected_from)} to {_show(url)}" if redirected_from \
            else _show(url)
        raise OutboundRefused(f"refused {what}: {exc}", url=url) from None
    return _replace_addresses(target, addresses)


def _replace_addresses(target: _Target, addresses: tuple[str, ...]) -> _Target:
    return _Target(target.url, target.scheme, target.host, target.port, target.path, addresses)


def _parse(url: str) -> tuple[_Target, IPAddress | None]:
    if not isinstance(url, str) or not url:
        raise _Refusal("not a URL")
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url):
        raise _Refusal("the URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _Refusal(f"not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in _PORTS:
        raise _Refusal(f"the {scheme}: scheme is not allowed (only http and https)" if scheme
                       else "not an absolute http(s) URL")
    if "@" in parts.netloc:
        raise _Refusal("URLs with credentials (user:password@) are not allowed")
    if port == 0:
        raise _Refusal("port 0 is not a valid port")
    host, literal = _parse_host(parts.netloc, parts.hostname or "")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if not path.isascii():
        path = quote(path, safe="!#$%&'()*+,/:;=?@[]~")
    return _Target(url, scheme, host, port or _PORTS[scheme], path), literal


def _parse_host(netloc: str, hostname: str) -> tuple[str, IPAddress | None]:
    """The host to send and, for literal addresses, the address it names."""
    if netloc.startswith("["):
        try:  # a zone id arrives percent-encoded: [fe80::1%25eth0]
            address = ipaddress.IPv6Address(unquote(hostname))
        except ValueError:
            raise _Refusal(f"[{hostname}] is not a valid IPv6 address") from None
        return str(address).split("%")[0], address
    name = _normalize_name(hostname)
    if not name:
        raise _Refusal("the URL has no host")
    literal = _legacy_ipv4(name)
    return (str(literal), literal) if literal else (name, None)


def _normalize_name(host: str) -> str:
    """Lower-case ASCII (IDNA) form without the trailing dot; refuses anything that is not a
    plain hostname, such as percent-escapes or backslashes."""
    host = host.lower()
    host = host[:-1] if host.endswith(".") else host
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise _Refusal(f"{host!r} is not a valid hostname ({exc})") from None
    if host and (len(host) > 253 or not all(_LABEL.fullmatch(x) for x in host.split("."))):
        raise _Refusal(f"{host!r} is not a valid hostname")
    return host


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """IPv4 in the spellings ``inet_aton`` accepts (``2130706433``, ``0x7f000001``,
    ``0177.0.0.1``, ``127.1``), parsed as the WHATWG URL standard does; None for names."""
    labels = host.split(".")
    if not _NUMBER.fullmatch(labels[-1]):
        return None
    try:
        if len(labels) > 4 or not all(_NUMBER.fullmatch(label) for label in labels):
            raise ValueError
        *head, last = (_ipv4_number(label) for label in labels)
        if any(part > 255 for part in head) or last >= 256 ** (4 - len(head)):
            raise ValueError
    except ValueError:
        # a name ending in a number is never a DNS name; do not let getaddrinfo guess
        raise _Refusal(f"{host} is not a valid IPv4 address") from None
    value = sum(part << 8 * (3 - index) for index, part in enumerate(head)) + last
    return ipaddress.IPv4Address(value)


def _ipv4_number(label: str) -> int:
    if label.startswith("0x"):
        return int(label[2:] or "0", 16)
    if len(label) > 1 and label.startswith("0"):
        return int(label, 8)
    return int(label)


def _addresses(target: _Target, literal: IPAddress | None, policy: OutboundPolicy,
               resolver: Resolver) -> tuple[str, ...]:
    if literal is not None:
        _check_address(literal, policy, shown=str(literal))
        return (str(_connectable(literal)),)
    answers = _resolve(target, resolver)
    trusted = policy.allows_host(target.host)
    checked: list[str] = []
    for address in answers:
        if not trusted:
            _check_address(address, policy, shown=f"{target.host} resolves to {address}, which")
        connect_to = str(_connectable(address))
        if connect_to not in checked:
            checked.append(connect_to)
    return tuple(checked)


def _check_address(address: IPAddress, policy: OutboundPolicy, *, shown: str) -> None:
    if policy.allows_address(_connectable(address)) or policy.allows_address(address):
        return
    problem = address_problem(address)
    if problem:
        raise _Refusal(f"{shown} is {problem} (not allowed for outbound requests)")


def _resolve(target: _Target, resolver: Resolver) -> list[IPAddress]:
    host = target.host
    if host == "localhost" or host.endswith(".localhost"):
        answers: Iterable[str] = _LOCALHOST_ANSWER
    else:
        try:
            answers = resolver(host, target.port)
        except (OSError, UnicodeError) as exc:
            raise OutboundError(f"cannot resolve {host} for {_show(target.url)}: {exc}",
                                url=target.url) from None
    try:
        addresses = [ipaddress.ip_address(str(answer)) for answer in answers]
    except ValueError as exc:
        raise _Refusal(f"the resolver gave an invalid address for {host} ({exc})") from None
    if not addresses:
        raise OutboundError(f"cannot resolve {host} for {_show(target.url)}: no addresses",
                            url=target.url)
    return addresses


def _show(url: str | None) -> str:
    """A URL fit for an error message: no credentials, not megabytes long."""
    url = _USERINFO.sub(r"\1***@", url or "")
    return url if len(url) <= 200 else url[:200] + "…"


# --- pinned connections ----------------------------------------------------------------------

class _Deadline:
    """One clock for a whole request. When it runs out, a timer shuts down every socket the
    request opened, so a read that the server keeps alive one byte at a time (which resets a
    per-read socket timeout) still ends."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        left = self.at - time.monotonic()
        if self.expired or left <= 0:
            raise TimeoutError("the request deadline passed")
        return left

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shutdown(sock)

    def _expire(self) -> None:
        with self._lock:  # never at the same time as finish() closes the sockets
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)

    def finish(self) -> None:
        """Stop the clock and close every socket of the request for good. A response urllib3
        rejects (conflicting Content-Length, say) leaves its socket to the garbage collector
        otherwise."""
        self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                if sock.fileno() != -1:
                    with contextlib.suppress(OSError):
                        os.close(sock.detach())
            self._sockets.clear()


def _shutdown(sock: socket.socket) -> None:
    # the plain socket method also works under TLS (it acts on the file descriptor); a socket
    # that is already closed has nothing left to stop
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _PinnedMixin:
    """Connects to the addresses checked before the request, never to a fresh DNS answer. The
    connection's ``host`` stays the hostname, so urllib3 sends it as Host and as TLS SNI and
    verifies the certificate against it."""

    port: int
    timeout: Any
    socket_options: Any

    def __init__(self, *args: Any, pinned: tuple[str, ...], deadline: _Deadline,
                 **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._pinned = pinned
        self._deadline = deadline

    def _new_conn(self) -> socket.socket:
        error: OSError = OSError("no address to connect to")
        for address in self._pinned:  # like create_connection: the next address on failure
            try:
                sock = _open_socket(address, self.port, self.timeout, self.socket_options,
                                    self._deadline)
            except OSError as exc:
                error = exc
                continue
            sys.audit("http.client.connect", self, address, self.port)
            return sock
        raise error


class _PinnedHTTPConnection(_PinnedMixin, HTTPConnection):
    pass


class _PinnedHTTPSConnection(_PinnedMixin, HTTPSConnection):
    pass


def _open_socket(address: str, port: int, timeout: float, options: Any,
                 deadline: _Deadline) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        for option in options or ():
            sock.setsockopt(*option)
        timeout = min(timeout, deadline.remaining())
        sock.settimeout(timeout)
        deadline.watch(sock)
        sock.connect((address, port))
    except TimeoutError:
        sock.close()
        raise TimeoutError(f"could not connect to {address} within {timeout:g} s") from None
    except BaseException:
        sock.close()
        raise
    return sock


# --- the session -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Response:
    status: int
    headers: HTTPHeaderDict  # case-insensitive
    content: bytes  # decoded, at most max_bytes
    url: str  # the final URL, after redirects
    reason: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        match = re.search(r"charset=[\"']?([\w.:-]+)", self.headers.get("content-type", ""))
        try:
            return self.content.decode(match.group(1) if match else "utf-8", "replace")
        except LookupError:  # an unknown charset name
            return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


@dataclass
class _Hop:
    method: str
    target: _Target
    headers: dict[str, str]  # the caller's, dropped once a redirect leaves the origin
    body: bytes | None
    body_headers: dict[str, str]


class GuardedSession:
    """The only way out: ``request`` for sources and webhooks, ``fetch`` for the renderer."""

    def __init__(self, policy: OutboundPolicy | None = None, *,
                 resolver: Resolver | None = None, ca_certs: str | None = None):
        self.policy = policy or OutboundPolicy()
        self._resolver = resolver or system_resolver
        self._ca_certs = ca_certs or certifi.where()

    def fetch(self, url: str) -> bytes:
        """GET ``url`` and return its body; non-2xx answers raise :class:`OutboundError`."""
        response = self.request("GET", url)
        if not response.ok:
            where = "" if response.url == url else f" (redirected to {_show(response.url)})"
            raise OutboundError(f"GET {_show(url)} answered {response.status} "
                                f"{response.reason}{where}".rstrip(), url=url,
                                status=response.status)
        return response.content

    def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                data: bytes | str | Mapping[str, Any] | None = None, json: Any = None,
                accept: str | None = None) -> Response:
        """Send one request, following checked redirects. Non-2xx answers are returned."""
        method = method.upper()
        if not _METHOD.fullmatch(method):
            raise ValueError(f"invalid HTTP method {method!r}")
        body, body_headers = _encode_body(data, json)
        caller = {k: v for k, v in (headers or {}).items() if k.lower() not in _OWN_HEADERS}
        accept = accept or next((caller.pop(k) for k in list(caller) if k.lower() == "accept"),
                                "*/*")
        hop = _Hop(method, _inspect(url, self.policy, self._resolver), caller, body,
                   body_headers)
        deadline = _Deadline(self.policy.timeout)
        try:
            return self._follow(hop, accept, deadline)
        finally:
            deadline.finish()

    def _follow(self, hop: _Hop, accept: str, deadline: _Deadline) -> Response:
        redirects = 0
        while True:
            response = self._send(hop, accept, deadline)
            location = response.headers.get("location")
            if response.status not in _REDIRECTS or not location:
                return response
            if redirects >= self.policy.max_redirects:
                raise OutboundError(f"{hop.method} {_show(hop.target.url)}: more than "
                                    f"{self.policy.max_redirects} redirects",
                                    url=hop.target.url)
            redirects += 1
            hop = self._redirect(hop, response.status, urljoin(hop.target.url, location))

    def _redirect(self, hop: _Hop, status: int, url: str) -> _Hop:
        target = _inspect(url, self.policy, self._resolver, redirected_from=hop.target.url)
        # caller headers may carry secrets (API keys) meant for the first origin only
        headers = hop.headers if target.origin == hop.target.origin else {}
        if status == 303 or (status in (301, 302) and hop.method == "POST"):
            method = "HEAD" if hop.method == "HEAD" else "GET"
            return _Hop(method, target, headers, None, {})
        return _Hop(hop.method, target, headers, hop.body, hop.body_headers)

    def _send(self, hop: _Hop, accept: str, deadline: _Deadline) -> Response:
        target = hop.target
        conn: HTTPConnection | None = None
        try:
            conn = self._connection(target, deadline)
            conn.connect()
            deadline.watch(conn.sock)  # under TLS, a new socket object
            conn.timeout = deadline.remaining()  # headers and each read wait at most this
            conn.request(hop.method, target.path, body=hop.body,
                         headers=self._headers(hop, accept), preload_content=False,
                         decode_content=True, enforce_content_length=True)
            raw = conn.getresponse()
            try:
                content = b"" if raw.status in _REDIRECTS and raw.headers.get("location") \
                    else _read_body(raw, target, self.policy, deadline)
            finally:
                raw.close()
        except (OSError, ValueError, http.client.HTTPException,
                urllib3.exceptions.HTTPError) as exc:  # ValueError: a header http.client refuses
            raise _failure(exc, hop, deadline) from exc
        finally:
            if conn is not None:
                conn.close()
        return Response(raw.status, HTTPHeaderDict(raw.headers), content, target.url,
                        raw.reason or "")

    def _connection(self, target: _Target, deadline: _Deadline) -> HTTPConnection:
        timeout = min(self.policy.connect_timeout, deadline.remaining())
        if target.scheme == "https":
            return _PinnedHTTPSConnection(target.host, target.port, timeout=timeout,
                                          pinned=target.addresses, deadline=deadline,
                                          cert_reqs="CERT_REQUIRED", ca_certs=self._ca_certs)
        return _PinnedHTTPConnection(target.host, target.port, timeout=timeout,
                                     pinned=target.addresses, deadline=deadline)

    def _headers(self, hop: _Hop, accept: str) -> dict[str, str]:
        return {**hop.headers, **hop.body_headers, "User-Agent": self.policy.user_agent,
                "Accept": accept,
                "Accept-Encoding": "gzip, deflate", "Connection": "close"}


def _encode_body(data: bytes | str | Mapping[str, Any] | None,
                 json: Any) -> tuple[bytes | None, dict[str, str]]:
    if data is not None and json is not None:
        raise ValueError("pass data or json, not both")
    if json is not None:
        body = jsonlib.dumps(json, separators=(",", ":"), ensure_ascii=False).encode()
        return body, {"Content-Type": "application/json"}
    if isinstance(data, Mapping):
        return urlencode(data, doseq=True).encode(), {
            "Content-Type": "application/x-www-form-urlencoded"}
    if isinstance(data, str):
        return data.encode(), {}
    return data, {}


def _read_body(raw: urllib3.HTTPResponse, target: _Target, policy: OutboundPolicy,
               deadline: _Deadline) -> bytes:
    """Stream the decoded body, stopping as soon as it passes ``max_bytes``."""
    limit = policy.max_bytes
    declared = raw.headers.get("content-length", "")
    encoded = raw.headers.get("content-encoding", "identity").lower() != "identity"
    if not encoded and declared.isdigit() and int(declared) > limit:
        raise OutboundTooLarge(f"{_show(target.url)} declares {int(declared):,} bytes; the "
                               f"limit is {limit:,}", url=target.url)
    chunks: list[bytes] = []
    size = 0
    while True:
        # read1 does one socket read and decodes at most _CHUNK bytes from it, so neither a
        # slow drip nor a compressed bomb can make one call hold on or blow up
        chunk = raw.read1(_CHUNK)
        deadline.remaining()  # a socket shut down by the deadline reads as a clean end
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise OutboundTooLarge(f"{_show(target.url)} is larger than the limit of "
                                   f"{limit:,} bytes", url=target.url)
        chunks.append(chunk)


def _failure(exc: BaseException, hop: _Hop, deadline: _Deadline) -> OutboundError:
    url = hop.target.url
    what = f"{hop.method} {_show(url)}"
    if deadline.expired or deadline.at <= time.monotonic():
        reason = f"timed out (the limit is {deadline.seconds:g} s for the whole request)"
    elif isinstance(exc, TimeoutError) and str(exc):
        reason = f"timed out: {exc}"
    elif isinstance(exc, (TimeoutError, urllib3.exceptions.TimeoutError)):
        reason = "timed out"
    elif isinstance(exc, ConnectionRefusedError):
        reason = "the connection was refused"
    else:
        reason = f"failed: {exc}"
    return OutboundError(f"{what} {reason}", url=url)
