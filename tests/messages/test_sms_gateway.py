"""The HTTP SMS gateway against a real local HTTP server; SMS outcomes in the ledger."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from campaigns.delivery.engine import send_request_process
from campaigns.models import Delivery
from campaigns.sms import HTTPGateway, OutboxGateway, SMSError, sms_gateway
from tests.support.api import results_list


class Gateway:
    """A local SMS service: records requests, answers with `status` and `body`."""

    def __init__(self):
        self.requests: list[dict] = []
        self.status = 200
        self.body = {"id": "gw-1"}
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                gateway.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "json": json.loads(self.rfile.read(length)),
                    }
                )
                payload = json.dumps(gateway.body).encode()
                self.send_response(gateway.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/sms/send"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway():
    with Gateway() as server:
        yield server


def test_http_gateway_posts_json_with_bearer_token(gateway):
    provider_id = HTTPGateway(gateway.url, token="s3cret").send("+380942583691", "Hi", "Shop")
    assert provider_id == "gw-1"
    [request] = gateway.requests
    assert request["path"] == "/sms/send"
    assert request["json"] == {"to": "+380942583691", "text": "Hi", "from": "Shop"}
    assert request["headers"]["Authorization"] == "Bearer s3cret"
    assert request["headers"]["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("status", "permanent"), [(400, True), (422, True), (429, False), (500, False), (503, False)]
)
def test_http_gateway_errors_say_whether_they_are_permanent(gateway, status, permanent):
    gateway.status = status
    gateway.body = {"error": "nope"}
    with pytest.raises(SMSError) as caught:
        HTTPGateway(gateway.url).send("+380942583691", "Hi", "Shop")
    assert caught.value.permanent is permanent
    assert str(status) in str(caught.value) and "nope" in str(caught.value)


def test_unreachable_gateway_is_transient():
    with pytest.raises(SMSError) as caught:
        HTTPGateway("http://127.0.0.1:9/sms", timeout=2).send("+380942583691", "Hi", "Shop")
    assert caught.value.permanent is False


def test_gateway_is_chosen_by_settings(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.HERALD_SMS_URL = ""
    assert isinstance(sms_gateway(), OutboxGateway)
    settings.HERALD_SMS_URL = "http://127.0.0.1:1/sms"
    settings.HERALD_SMS_TOKEN = "t"
    chosen = sms_gateway()
    assert isinstance(chosen, HTTPGateway) and chosen.token == "t"


@pytest.mark.django_db
def test_sms_api_through_the_http_gateway_records_outcomes(api, full_key, gateway, settings):
    settings.HERALD_SMS_URL = gateway.url
    settings.HERALD_SMS_TOKEN = ""
    body = {"from": "Shop", "text": "Code 1234", "phoneNumbers": ["380942583691"]}
    answer = api.post("/api/v1/message/sms", key=full_key, body=body).json()
    assert send_request_process(send_request_id=answer["id"]) is None
    delivery = Delivery.objects.get(request_id=results_list(answer["results"])[0]["requestId"])
    assert delivery.status == "sent"
    assert delivery.provider == "http" and delivery.provider_message_id == "gw-1"
    assert gateway.requests[0]["json"] == {
        "to": "+380942583691",
        "text": "Code 1234",
        "from": "Shop",
    }
    assert "Authorization" not in gateway.requests[0]["headers"]

    gateway.status = 400
    gateway.body = {"error": "number blocked"}
    answer = api.post("/api/v1/message/sms", key=full_key, body=body).json()
    send_request_process(send_request_id=answer["id"])
    refused = Delivery.objects.get(request_id=results_list(answer["results"])[0]["requestId"])
    assert refused.status == "failed" and "number blocked" in refused.error

    gateway.status = 503
    answer = api.post("/api/v1/message/sms", key=full_key, body=body).json()
    assert send_request_process(send_request_id=answer["id"]) > 0
    later = Delivery.objects.get(request_id=results_list(answer["results"])[0]["requestId"])
    assert later.status == "queued" and later.next_attempt_at is not None
    assert "503" in later.error
