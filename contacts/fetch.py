"""Download a file an integrator points Herald at, without letting the URL reach inside.

The URL comes from an API client, so it must never make Herald talk to its own network
(SSRF): loopback, private and CGNAT ranges, link-local (the cloud metadata address
169.254.169.254), multicast, reserved and their IPv6 forms. The host is resolved once, every
address is checked, and the connection goes to that checked address (Host header and TLS SNI
keep the hostname), so a DNS answer that changes between check and connect cannot slip
through. Redirects are followed by hand and each hop is checked the same way.
"""

import base64
import http.client
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import unquote, urljoin, urlsplit

from django.conf import settings

from config.core.errors import HeraldError

MAX_DOWNLOAD_BYTES = 100 * 1024 * 1024  # the eSputnik v1 API's limit for import files
MAX_REDIRECTS = 5
CONNECT_AND_READ_TIMEOUT = 30.0  # seconds per socket operation
TOTAL_TIMEOUT = 15 * 60.0  # seconds for the whole download (100 MB at ~120 kB/s)
CHUNK_SIZE = 64 * 1024
REDIRECT_STATUSES = {301, 302, 303, 307, 308}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Ranges `is_private`/`is_global` do not cover on every Python version, named explicitly.
_EXTRA_FORBIDDEN = [
    ipaddress.ip_network("100.64.0.0/10"),  # CGNAT (RFC 6598)
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments
    ipaddress.ip_network("198.18.0.0/15"),  # benchmarking
    ipaddress.ip_network("64:ff9b:1::/48"),  # local-use NAT64 (RFC 8215)
]


class FetchError(HeraldError):
    """The file could not be downloaded; the message is meant for the person who sent the link."""


@dataclass
class FetchResult:
    url: str  # the final URL after redirects, without credentials
    size: int
    content_type: str


def address_refusal(address: IPAddress, extra_forbidden: Iterable[IPNetwork] = ()) -> str | None:
    """Why Herald must not connect to `address`, or None when it is a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv6 socket reaches the embedded IPv4 address for these forms; judge that one.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in ipaddress.ip_network("64:ff9b::/96"):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            reason = address_refusal(embedded, extra_forbidden)
            return f"{reason} (embedded in {address})" if reason else None
        if address.teredo:
            return f"{address} is a Teredo tunnel address"
    for network in extra_forbidden:
        if _contains(network, address):
            return f"{address} is in the forbidden network {network}"
    checks = [
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private-network address"),
    ]
    for failed, label in checks:
        if failed:
            return f"{address} is {label}"
    for network in _EXTRA_FORBIDDEN:
        if _contains(network, address):
            return f"{address} is in the non-public range {network}"
    if not address.is_global:
        return f"{address} is not a public address"
    return None


# What inet_aton (and so getaddrinfo) reads as an IPv4 address without asking DNS: one to four
# decimal, octal (leading 0) or hex (0x) parts, as in 2130706433, 0177.0.0.1 and 0x7f.1.
_LEGACY_IPV4 = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?", re.IGNORECASE)


def literal_address(host: str) -> IPAddress | None:
    """`host` as the address a resolver reads in it, in any spelling (IPv6, dotted IPv4 and
    its legacy decimal, octal and hex forms), or None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError:
            return None
    return None


def host_refusal(host: str, port: int) -> str | None:
    """Why a fetch from `host` would be refused, for the edge that takes the URL (an API field)
    to answer with a 4xx at once instead of a failed job later. A name is resolved here as
    well; one that does not resolve now is left to the fetch, which resolves and checks it
    again (the answer may change between the two, so that check is the one that guards)."""
    if private_urls_allowed():
        return None
    address = literal_address(host)
    if address is not None:
        return address_refusal(address)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    for *_, sockaddr in infos:
        if isinstance(sockaddr[0], str):
            reason = address_refusal(ipaddress.ip_address(sockaddr[0].split("%", 1)[0]))
            if reason:
                return f"{host} ({reason})"
    return None


def url_refusal(url: str) -> str | None:
    """Why Herald must not call `url`, or None: not http(s), no host, a bad port, or a host
    host_refusal refuses (an inside address in any spelling; lifted by the same setting).
    For URLs an admin or marketer configures, checked when saved and at each redirect."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return f"{url!r} is not an http:// or https:// URL"
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        return f"{url!r} has an invalid port"
    reason = host_refusal(parts.hostname, port)
    return f"{url!r} is not a public internet address: {reason}" if reason else None


def resolve_checked(
    host: str, port: int, *, allow_private: bool, extra_forbidden: Iterable[IPNetwork] = ()
) -> list[str]:
    """Resolve `host` once; refuse if any of its addresses is forbidden (a name with one public
    and one private address is a classic rebinding trick)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"Cannot resolve host {host!r}: {exc}.") from None
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        text = sockaddr[0]
        if not isinstance(text, str):  # not an IP family, which a host name never resolves to
            continue
        if text not in addresses:
            addresses.append(text)
    extra = list(extra_forbidden)
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if allow_private:
            network = next((n for n in extra if _contains(n, address)), None)
            reason = f"{address} is in the forbidden network {network}" if network else None
        else:
            reason = address_refusal(address, extra)
        if reason is None:
            continue
        raise FetchError(
            f"Refusing to download from {host}: {reason}. "
            "Herald only fetches files from public internet addresses."
        )
    if not addresses:
        raise FetchError(f"Host {host!r} has no address.")
    return addresses


def _contains(network: IPNetwork, address: IPAddress) -> bool:
    return address.version == network.version and address in network


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to an already-checked address; `host` stays the name (Host header)."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float):
        self._tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._tls)
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # SNI and certificate checking use the hostname, not the pinned address.
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


def fetch_to_file(
    url: str,
    dest: BinaryIO,
    *,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
    allow_private: bool | None = None,
    extra_forbidden: Iterable[IPNetwork] = (),
    timeout: float = CONNECT_AND_READ_TIMEOUT,
    total_timeout: float = TOTAL_TIMEOUT,
) -> FetchResult:
    """Stream the body at `url` into `dest`, following up to MAX_REDIRECTS redirects.

    `allow_private` (default: settings.HERALD_IMPORT_ALLOW_PRIVATE_URLS) lifts the
    public-address rule for development and tests; `extra_forbidden` networks are refused
    even then.
    """
    if allow_private is None:
        allow_private = private_urls_allowed()
    extra = [ipaddress.ip_network(n) for n in extra_forbidden]
    deadline = time.monotonic() + total_timeout
    current = url
    origin_auth: tuple[str, str, int] | None = None
    auth_header: str | None = None
    for hop in range(MAX_REDIRECTS + 1):
        parts = urlsplit(current)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise FetchError(f"Only http and https links can be imported, not {scheme or 'none'}.")
        host = parts.hostname
        if not host:
            raise FetchError(f"The link {_redact(current)} has no host.")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise FetchError(f"The link {_redact(current)} has an invalid port.") from None
        origin = (scheme, host, port)
        if parts.username is not None:
            origin_auth = origin
            credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            auth_header = "Basic " + base64.b64encode(credentials.encode()).decode()
        elif origin_auth != origin:
            # Credentials belong to the server they were written for, never to a redirect target.
            auth_header = None
        addresses = resolve_checked(host, port, allow_private=allow_private, extra_forbidden=extra)
        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"
        response, conn = _request(scheme, host, port, addresses, path, auth_header, timeout)
        try:
            if response.status in REDIRECT_STATUSES:
                location = response.getheader("Location")
                if not location:
                    raise FetchError(f"{_redact(current)} redirected without a Location.")
                if hop == MAX_REDIRECTS:
                    raise FetchError(f"Too many redirects (more than {MAX_REDIRECTS}).")
                current = urljoin(current, location.strip())
                continue
            if response.status != 200:
                raise FetchError(
                    f"{_redact(current)} answered HTTP {response.status} {response.reason}."
                )
            length = response.getheader("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise FetchError(_too_large(max_bytes))
            size = _stream(response, dest, max_bytes=max_bytes, deadline=deadline)
            return FetchResult(
                url=_redact(current),
                size=size,
                content_type=response.getheader("Content-Type", ""),
            )
        finally:
            conn.close()
    raise FetchError(f"Too many redirects (more than {MAX_REDIRECTS}).")  # pragma: no cover


def private_urls_allowed() -> bool:
    return settings.HERALD_IMPORT_ALLOW_PRIVATE_URLS


def _request(scheme, host, port, addresses, path, auth_header, timeout):
    connection_class = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    last_error: Exception | None = None
    for address in addresses:
        conn = connection_class(host, port, address=address, timeout=timeout)
        try:
            conn.putrequest("GET", path, skip_accept_encoding=True)
            conn.putheader("Accept-Encoding", "identity")
            conn.putheader("User-Agent", "Herald-import/1")
            if auth_header:
                conn.putheader("Authorization", auth_header)
            conn.endheaders()
            return conn.getresponse(), conn
        except ssl.SSLError as exc:
            conn.close()
            raise FetchError(f"TLS error talking to {host}: {exc.reason or exc}.") from None
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            last_error = exc
    raise FetchError(f"Cannot connect to {host}:{port}: {last_error}.")


def _stream(response, dest: BinaryIO, *, max_bytes: int, deadline: float) -> int:
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise FetchError("The download took too long and was stopped.")
        try:
            chunk = response.read(CHUNK_SIZE)
        except (OSError, http.client.HTTPException) as exc:
            raise FetchError(f"The download was interrupted: {exc}.") from None
        if not chunk:
            return size
        size += len(chunk)
        if size > max_bytes:
            raise FetchError(_too_large(max_bytes))
        dest.write(chunk)


def _too_large(max_bytes: int) -> str:
    return f"The file is larger than the {max_bytes // (1024 * 1024)} MB limit."


def _redact(url: str) -> str:
    """The URL without its password, for messages and storage shown to people."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{parts.username}:***@{netloc}").geturl()


def redact_url(url: str) -> str:
    return _redact(url)
