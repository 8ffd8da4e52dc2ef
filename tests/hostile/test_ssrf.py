"""Server-side request forgery: every URL a user gives Herald to fetch (a CSV import link on
the eSputnik v1 API, a workflow's webhook step) aimed inside Herald's own network, in every
spelling, is refused, and the target never sees a request.

A canary server on 127.0.0.1 stands for the inside; a URL that reached it would show in its
log. Names are resolved by patching socket.getaddrinfo (the resolver is the third-party
boundary), and a "public" download host is made by patching socket.create_connection to carry
one public address to a local server, so that a redirect from an allowed host can be tried
with the private-address rule on."""

import ipaddress
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from contacts.csv_import import csv_import_run
from contacts.fetch import FetchError, fetch_to_file, literal_address
from contacts.imports import csv_import_start
from contacts.models import ImportJob, ImportStatus
from marketing.workflows.webhook import WebhookError, webhook_post
from tests.contacts.http_server import body, redirect, server_fixture  # noqa: F401

pytestmark = pytest.mark.django_db
# A global address; the patched network carries it to the local download server.
PUBLIC_ADDRESS = "93.184.215.14"
# Names and what the patched resolver answers for them.
NAMES = {
    "intranet.example": ["10.1.2.3"],
    "metadata.example": ["169.254.169.254"],
    "loopback.example": ["127.0.0.1"],
    "rebinding.example": [PUBLIC_ADDRESS, "127.0.0.1"],  # one public, one private answer
    "v6-local.example": ["fd00::1"],
    "files.example": [PUBLIC_ADDRESS],
}


class _Canary(BaseHTTPRequestHandler):
    def _any(self):
        self.server.seen.append((self.command, self.path))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_HEAD = _any

    def log_message(self, *args):
        pass


@pytest.fixture
def canary():
    """The inside of Herald's network: a server on 127.0.0.1 that records every request."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Canary)
    httpd.seen = []
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def network(monkeypatch, server, settings):
    """The patched resolver and network: NAMES resolve as listed; PUBLIC_ADDRESS reaches
    the local `server` (the allowed download host). Private addresses stay refused."""
    settings.HERALD_IMPORT_ALLOW_PRIVATE_URLS = False
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.create_connection

    def getaddrinfo(host, port, *args, **kwargs):
        if host in NAMES:
            return [
                (
                    socket.AF_INET6 if ":" in a else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (a, port, 0, 0) if ":" in a else (a, port),
                )
                for a in NAMES[host]
            ]
        return real_getaddrinfo(host, port, *args, **kwargs)

    def create_connection(address, *args, **kwargs):
        if address[0] == PUBLIC_ADDRESS:
            return real_connect(("127.0.0.1", server.server_address[1]), *args, **kwargs)
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    return server


def inside_urls(port: int) -> dict[str, str]:
    """Every spelling of an address inside Herald's network, each aimed at the canary's port."""
    return {
        "loopback": f"http://127.0.0.1:{port}/c.csv",
        "loopback name": f"http://localhost:{port}/c.csv",
        "10/8": f"http://10.0.0.1:{port}/c.csv",
        "172.16/12": f"http://172.16.5.4:{port}/c.csv",
        "192.168/16": f"http://192.168.1.1:{port}/c.csv",
        "cloud metadata": "http://169.254.169.254/latest/meta-data/",
        "unspecified": f"http://0.0.0.0:{port}/c.csv",
        "ipv6 loopback": f"http://[::1]:{port}/c.csv",
        "ipv6 unique local": f"http://[fd00::1]:{port}/c.csv",
        "ipv4-mapped ipv6": f"http://[::ffff:127.0.0.1]:{port}/c.csv",
        "decimal ipv4": f"http://2130706433:{port}/c.csv",
        "octal ipv4": f"http://0177.0.0.1:{port}/c.csv",
        "hex ipv4": f"http://0x7f.1:{port}/c.csv",
        "short ipv4": f"http://127.1:{port}/c.csv",
        "name resolving to 10/8": f"http://intranet.example:{port}/c.csv",
        "name resolving to metadata": "http://metadata.example/latest/",
        "name resolving to loopback": f"http://loopback.example:{port}/c.csv",
        "name with one private answer": f"http://rebinding.example:{port}/c.csv",
        "name resolving to fd00::/8": f"http://v6-local.example:{port}/c.csv",
    }


NOT_HTTP = {
    "file": "file:///etc/passwd",
    "gopher": "gopher://127.0.0.1:6379/_INFO",
    "ftp": "ftp://127.0.0.1/c.csv",
    "data": "data:text/csv,Email%0Aa@example.com",
    "javascript": "javascript:alert(1)",
}


def test_every_spelling_of_an_inside_address_is_read_as_that_address():
    assert literal_address("2130706433") == ipaddress.ip_address("127.0.0.1")
    assert literal_address("0177.0.0.1") == ipaddress.ip_address("127.0.0.1")
    assert literal_address("0x7f.1") == ipaddress.ip_address("127.0.0.1")
    assert literal_address("127.1") == ipaddress.ip_address("127.0.0.1")
    assert literal_address("::ffff:127.0.0.1") == ipaddress.ip_address("::ffff:127.0.0.1")
    assert literal_address("files.example") is None
    assert literal_address("1password.com") is None


def test_an_import_link_inside_the_network_is_a_400_naming_link_and_nothing_is_fetched(
    api, full_key, canary, network
):
    urls = {**inside_urls(canary.server_address[1]), **NOT_HTTP}
    for what, url in urls.items():
        response = api.post("/api/v1/contacts/upload", key=full_key, body={"link": url})
        assert response.status_code == 400, (what, url, response.content)
        assert list(response.json()) == ["link"], (what, response.json())
        print(f"{what:32} {url:50} -> 400 {response.json()['link'][0]}")
    assert canary.seen == []
    assert not ImportJob.objects.exists()


def test_a_public_import_link_still_starts_an_import(
    api, full_key, network, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        response = api.post(
            "/api/v1/contacts/upload", key=full_key, body={"link": "http://files.example/c.csv"}
        )
    assert response.status_code == 200, response.content


def test_a_redirect_from_an_allowed_host_to_the_inside_fails_the_import_unfetched(canary, network):
    port = canary.server_address[1]
    targets = {**inside_urls(port), **NOT_HTTP}
    for what, target in targets.items():
        network.routes["/c.csv"] = redirect(target)
        job = csv_import_start(options={"dedupeOn": "email"}, link="http://files.example/c.csv")
        csv_import_run(job_id=job.pk)
        job.refresh_from_db()
        assert job.status == ImportStatus.ERROR, (what, job.description)
        print(f"redirect to {what:32} -> {job.description}")
    assert canary.seen == []
    # The allowed host was asked each time; it is the redirect that was not followed.
    assert len(network.seen) == len(targets)


def test_the_allowed_host_serves_an_import_when_it_does_not_redirect(network):
    network.routes["/c.csv"] = body(b"Email\nann@example.com\n")
    with open("/dev/null", "wb") as sink:
        result = fetch_to_file("http://files.example/c.csv", sink)
    assert result.size == len(b"Email\nann@example.com\n")


def test_a_workflow_webhook_to_the_inside_is_refused_for_good_and_never_sent(canary, network):
    urls = {**inside_urls(canary.server_address[1]), **NOT_HTTP}
    for what, url in urls.items():
        with pytest.raises(WebhookError) as refused:
            webhook_post(url=url, payload={"a": 1}, secret="s", idempotency_key="k")
        assert refused.value.permanent, (what, refused.value)
        print(f"webhook to {what:32} -> {refused.value}")
    assert canary.seen == []


def test_a_fetch_refuses_an_inside_address_even_in_a_legacy_spelling(canary, network):
    for url in inside_urls(canary.server_address[1]).values():
        with pytest.raises(FetchError), open("/dev/null", "wb") as sink:
            fetch_to_file(url, sink)
    assert canary.seen == []
