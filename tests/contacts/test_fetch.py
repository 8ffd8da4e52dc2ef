"""The import downloader: public addresses only, redirects re-checked, size capped."""

import base64
import io
import ipaddress

import pytest

from contacts.fetch import FetchError, address_refusal, fetch_to_file, resolve_checked
from tests.contacts.http_server import body, redirect, server_fixture  # noqa: F401 (fixture)

CSV = b"Email,First name\nann@example.com,Ann\n"


def test_downloads_file_when_private_addresses_are_allowed(server):
    server.routes["/contacts.csv"] = body(CSV)
    out = io.BytesIO()
    result = fetch_to_file(f"{server.base}/contacts.csv", out, allow_private=True)
    assert out.getvalue() == CSV
    assert result.size == len(CSV)
    assert result.content_type.startswith("text/csv")


def test_setting_allows_private_addresses(server, settings):
    settings.HERALD_IMPORT_ALLOW_PRIVATE_URLS = True
    server.routes["/contacts.csv"] = body(CSV)
    out = io.BytesIO()
    fetch_to_file(f"{server.base}/contacts.csv", out)
    assert out.getvalue() == CSV


def test_default_refuses_the_loopback_server(server, settings):
    settings.HERALD_IMPORT_ALLOW_PRIVATE_URLS = False
    server.routes["/contacts.csv"] = body(CSV)
    with pytest.raises(FetchError, match="loopback"):
        fetch_to_file(f"{server.base}/contacts.csv", io.BytesIO())
    assert server.seen == [], "the refused server must not even be contacted"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x.csv",
        "http://127.8.9.10:8080/x.csv",
        "http://10.1.2.3/x.csv",
        "http://172.16.0.1/x.csv",
        "http://192.168.1.1/x.csv",
        "http://100.64.0.1/x.csv",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/x.csv",
        "http://224.0.0.1/x.csv",
        "http://240.0.0.1/x.csv",
        "http://[::1]/x.csv",
        "http://[::]/x.csv",
        "http://[fc00::1]/x.csv",
        "http://[fd12:3456::1]/x.csv",
        "http://[fe80::1]/x.csv",
        "http://[::ffff:127.0.0.1]/x.csv",
        "http://[::ffff:169.254.169.254]/x.csv",
        "http://[64:ff9b::a00:1]/x.csv",
        "http://[2002:7f00:1::]/x.csv",
        "http://localhost/x.csv",
        "https://localhost:8443/x.csv",
        "http://2130706433/x.csv",  # 127.0.0.1 as one decimal number
        "http://0x7f.1/x.csv",
    ],
)
def test_default_refuses_non_public_addresses(url):
    with pytest.raises(FetchError, match="Refusing to download"):
        fetch_to_file(url, io.BytesIO(), allow_private=False)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "93.184.215.14"])
def test_public_addresses_pass_the_check(address):
    assert address_refusal(ipaddress.ip_address(address)) is None


def test_any_forbidden_address_among_several_refuses_the_host(monkeypatch):
    """A name answering one public and one private address is refused outright."""

    def fake_getaddrinfo(host, port, type=0):
        return [
            (2, 1, 6, "", ("93.184.215.14", port)),
            (2, 1, 6, "", ("10.0.0.5", port)),
        ]

    monkeypatch.setattr("socket.getaddrinfo", fake_getaddrinfo)
    with pytest.raises(FetchError, match=r"10\.0\.0\.5 is a private-network address"):
        resolve_checked("files.example.com", 80, allow_private=False)


def test_redirect_to_forbidden_address_is_refused(server):
    """127.0.0.1 is allowed here, 127.0.0.2 is not: the redirect hop must be re-checked."""
    port = server.server_address[1]
    server.routes["/start.csv"] = redirect(f"http://127.0.0.2:{port}/contacts.csv")
    server.routes["/contacts.csv"] = body(CSV)
    with pytest.raises(FetchError, match=r"127\.0\.0\.2 is in the forbidden network"):
        fetch_to_file(
            f"{server.base}/start.csv",
            io.BytesIO(),
            allow_private=True,
            extra_forbidden=["127.0.0.2/32"],
        )
    assert [s["path"] for s in server.seen] == ["/start.csv"]


def test_redirect_to_localhost_name_is_refused_by_default(monkeypatch):
    """With the real default policy, a public hop that redirects to `localhost` stops there."""
    from contacts import fetch

    hops = []

    def fake_resolve(host, port, *, allow_private, extra_forbidden=()):
        hops.append(host)
        if host == "files.example.com":
            return ["93.184.215.14"]
        return real_resolve(host, port, allow_private=allow_private)

    class FakeResponse:
        status = 302
        reason = "Found"

        def getheader(self, name, default=None):
            return "http://localhost/secret" if name == "Location" else default

    class FakeConn:
        def close(self):
            pass

    real_resolve = fetch.resolve_checked
    monkeypatch.setattr(fetch, "resolve_checked", fake_resolve)
    monkeypatch.setattr(fetch, "_request", lambda *a: (FakeResponse(), FakeConn()))
    with pytest.raises(FetchError, match="Refusing to download from localhost"):
        fetch_to_file("http://files.example.com/c.csv", io.BytesIO(), allow_private=False)
    assert hops == ["files.example.com", "localhost"]


def test_follows_relative_and_absolute_redirects(server):
    server.routes["/a"] = redirect("/b", 301)
    server.routes["/b"] = redirect(f"{server.base}/c", 307)
    server.routes["/c"] = body(CSV)
    out = io.BytesIO()
    result = fetch_to_file(f"{server.base}/a", out, allow_private=True)
    assert out.getvalue() == CSV
    assert result.url == f"{server.base}/c"


def test_more_than_five_redirects_fail(server):
    for i in range(7):
        server.routes[f"/r{i}"] = redirect(f"/r{i + 1}")
    server.routes["/r7"] = body(CSV)
    with pytest.raises(FetchError, match="Too many redirects"):
        fetch_to_file(f"{server.base}/r0", io.BytesIO(), allow_private=True)
    assert len(server.seen) == 6


def test_userinfo_becomes_basic_auth_and_is_not_sent_to_another_host(server):
    port = server.server_address[1]
    server.routes["/private.csv"] = redirect(f"http://localhost:{port}/public.csv")
    server.routes["/public.csv"] = body(CSV)
    fetch_to_file(
        f"http://user%40corp:p%3Ass@127.0.0.1:{port}/private.csv",
        io.BytesIO(),
        allow_private=True,
    )
    first, second = server.seen
    expected = "Basic " + base64.b64encode(b"user@corp:p:ss").decode()
    assert first["headers"]["Authorization"] == expected
    assert "Authorization" not in second["headers"]


def test_declared_oversize_is_refused_before_reading(server):
    server.routes["/big.csv"] = body(b"x" * 2048)
    with pytest.raises(FetchError, match="larger than"):
        fetch_to_file(f"{server.base}/big.csv", io.BytesIO(), allow_private=True, max_bytes=1024)


def test_oversize_without_length_is_stopped_while_streaming(server):
    server.routes["/big.csv"] = body(b"x" * 300_000, content_length=False)
    out = io.BytesIO()
    with pytest.raises(FetchError, match="larger than"):
        fetch_to_file(f"{server.base}/big.csv", out, allow_private=True, max_bytes=100_000)
    assert len(out.getvalue()) <= 100_000


def test_http_error_status_is_reported(server):
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_to_file(f"{server.base}/missing.csv", io.BytesIO(), allow_private=True)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x.csv", "Only http and https"),
        ("file:///etc/passwd", "Only http and https"),
        ("http:///x.csv", "has no host"),
        ("http://example.com:99999/x.csv", "invalid port"),
        ("http://no-such-host.invalid/x.csv", "Cannot resolve host"),
    ],
)
def test_bad_links_fail_with_a_clear_message(url, message):
    with pytest.raises(FetchError, match=message):
        fetch_to_file(url, io.BytesIO())


def test_redirect_to_another_scheme_is_refused(server):
    server.routes["/a"] = redirect("file:///etc/passwd")
    with pytest.raises(FetchError, match="Only http and https"):
        fetch_to_file(f"{server.base}/a", io.BytesIO(), allow_private=True)


def test_silent_server_times_out(server):
    import time

    def slow(handler):
        time.sleep(2)
        body(CSV)(handler)

    server.routes["/slow.csv"] = slow
    with pytest.raises(FetchError, match=r"timed out|interrupted|Cannot connect"):
        fetch_to_file(f"{server.base}/slow.csv", io.BytesIO(), allow_private=True, timeout=0.5)
