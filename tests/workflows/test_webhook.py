"""Webhook steps against a real local HTTP server; private addresses refused by default."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.urls import reverse

from marketing.models import Event, EventType
from marketing.workflows.models import WorkflowRun
from marketing.workflows.services import WorkflowError, workflow_activate
from marketing.workflows.triggers import workflows_start_for_event
from tests.contacts.factories import ContactFactory
from tests.workflows.conftest import chain, make_workflow

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    received = []

    class Handler(BaseHTTPRequestHandler):
        status = 204

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, dict(self.headers), body))
            self.send_response(Handler.status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.received = received
    server.handler = Handler
    yield server
    server.shutdown()
    server.server_close()


def run_webhook(url, capture, *, settings=None):
    """Activate a webhook workflow and run it for one event. With `settings`, the workflow
    is activated with private addresses allowed and run with them refused (the call checks
    again what activation checked)."""
    contact = ContactFactory(email="ann@example.com")
    if settings is not None:
        settings.HERALD_IMPORT_ALLOW_PRIVATE_URLS = True
    workflow = make_workflow(chain({"kind": "webhook", "url": url}, {"kind": "exit"}))
    if settings is not None:
        settings.HERALD_IMPORT_ALLOW_PRIVATE_URLS = False
    event = Event.objects.create(
        event_type=EventType.objects.get(key="signup"),
        params={"orderId": "A-1"},
        contact=contact,
    )
    with capture(execute=True):
        workflows_start_for_event(event=event)
    return workflow, WorkflowRun.objects.get(), contact


def test_webhook_posts_signed_json_to_a_local_server_when_private_addresses_are_allowed(
    receiver, settings, django_capture_on_commit_callbacks
):
    settings.HERALD_IMPORT_ALLOW_PRIVATE_URLS = True
    url = f"http://127.0.0.1:{receiver.server_port}/hooks/herald?x=1"
    workflow, run, contact = run_webhook(url, django_capture_on_commit_callbacks)
    assert run.status == "exited", run.error
    [(path, headers, body)] = receiver.received
    assert path == "/hooks/herald?x=1"
    payload = json.loads(body)
    assert payload["contactId"] == contact.pk
    assert payload["params"] == {"orderId": "A-1"}
    assert payload["runId"] == run.pk
    expected = hmac.new(
        workflow.webhook_secret.encode(),
        headers["X-Herald-Timestamp"].encode() + b"." + body,
        hashlib.sha256,
    ).hexdigest()
    assert headers["X-Herald-Signature"] == f"sha256={expected}"
    assert headers["Idempotency-Key"] == f"herald-run-{run.pk}-s1"


def test_webhook_to_a_private_address_is_refused_when_it_runs_too(
    receiver, settings, django_capture_on_commit_callbacks
):
    url = f"http://127.0.0.1:{receiver.server_port}/hook"
    _, run, _ = run_webhook(url, django_capture_on_commit_callbacks, settings=settings)
    assert receiver.received == []
    assert run.status == "failed"
    assert "loopback" in run.error


def test_webhook_server_error_is_retried(receiver, settings, django_capture_on_commit_callbacks):
    settings.HERALD_IMPORT_ALLOW_PRIVATE_URLS = True
    receiver.handler.status = 500
    url = f"http://127.0.0.1:{receiver.server_port}/hook"
    _, run, _ = run_webhook(url, django_capture_on_commit_callbacks)
    assert run.status == "waiting" and run.attempts == 1
    assert "HTTP 500" in run.error


def test_webhook_client_error_fails_the_run_at_once(
    receiver, settings, django_capture_on_commit_callbacks
):
    settings.HERALD_IMPORT_ALLOW_PRIVATE_URLS = True
    receiver.handler.status = 404
    url = f"http://127.0.0.1:{receiver.server_port}/hook"
    _, run, _ = run_webhook(url, django_capture_on_commit_callbacks)
    assert run.status == "failed" and "HTTP 404" in run.error


INSIDE_URLS = [
    "http://127.0.0.1:8000/hook",
    "http://localhost/hook",
    "http://10.0.0.5/hook",
    "http://192.168.1.1/hook",
    "http://172.16.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://2130706433/hook",
    "http://0x7f.1/hook",
    "http://0177.0.0.1/hook",
    "http://0/hook",
    "ftp://hooks.example.com/hook",
    "file:///etc/passwd",
    "gopher://hooks.example.com/",
]


@pytest.mark.parametrize("url", INSIDE_URLS)
def test_a_workflow_whose_webhook_points_inside_is_not_activated(settings, url):
    settings.HERALD_IMPORT_ALLOW_PRIVATE_URLS = False
    workflow = make_workflow(
        chain({"kind": "webhook", "url": url}, {"kind": "exit"}), activate=False
    )
    with pytest.raises(WorkflowError) as refused:
        workflow_activate(workflow=workflow)
    assert any("webhook URL" in problem for problem in refused.value.problems), refused.value
    workflow.refresh_from_db()
    assert workflow.status == "draft" and workflow.current_version is None


def test_the_allow_setting_lets_a_webhook_to_a_local_server_be_activated(settings):
    settings.HERALD_IMPORT_ALLOW_PRIVATE_URLS = True
    workflow = make_workflow(
        chain({"kind": "webhook", "url": "http://127.0.0.1:9/hook"}, {"kind": "exit"})
    )
    assert workflow.status == "active"


def test_the_step_editor_refuses_a_webhook_url_that_points_inside(client, marketer, settings):
    settings.HERALD_IMPORT_ALLOW_PRIVATE_URLS = False
    client.force_login(marketer)
    workflow = make_workflow(
        chain({"kind": "webhook", "url": "https://hooks.example.com/a"}), activate=False
    )
    url = reverse("workflow_step_save", args=[workflow.pk, "s1"])

    response = client.post(url, {"s1-url": "http://169.254.169.254/latest/", "s1-next": ""})
    assert response.status_code == 400
    assert "public internet address" in response.content.decode()
    workflow.refresh_from_db()
    assert workflow.draft_graph["steps"][0]["url"] == "https://hooks.example.com/a"
