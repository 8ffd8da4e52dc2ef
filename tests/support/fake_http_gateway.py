"""A local JSON HTTP messaging gateway, for the generic HTTP provider's tests: the kind of
service a marketer connects without code (POST one message, get an id back).

    with FakeGateway(token="t0k") as gateway:
        gateway.url("/v1/messages")     # the send URL
        gateway.received                # the JSON bodies it accepted, in order
        gateway.answers["x@y"] = (429, {"error": "slow down"})   # per recipient ("to")

Protocol: `POST /v1/messages` with `Authorization: Bearer <token>` and a JSON body whose
`to` (or `recipient`) names the recipient; answers 202 `{"data": {"messageId": "gw-<n>"}}`,
401 `{"error": "invalid token"}` for a wrong token, 400 for a body that is not JSON.
`GET /v1/health` answers 200 with the same token, 401 without. `down = True` makes every
request answer 503; `drop_connections = True` closes each connection after its answer
without announcing it. `LocalHTTPServer` is the threaded server both fakes build on.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LocalHTTPServer:
    """A ThreadingHTTPServer on 127.0.0.1 in a thread; subclasses implement `handle`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.drop_connections = False
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {name.lower(): value for name, value in self.headers.items()}
                with owner.lock:
                    owner.requests.append((self.command, self.path, headers, body))
                status, payload, extra = owner.handle(self.command, self.path, headers, body)
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (extra or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
                if owner.drop_connections:
                    # Closed after the answer without saying so (no Connection: close), as
                    # servers do with idle keep-alive connections.
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_OPTIONS = do_HEAD = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str] | None]:
        raise NotImplementedError

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeGateway(LocalHTTPServer):
    def __init__(self, token: str = "gw-token") -> None:  # noqa: S107 (a test token)
        super().__init__()
        self.token = token
        self.received: list[dict[str, Any]] = []
        self.answers: dict[str, tuple[int, Any]] = {}
        self.down = False
        self.count = 0

    def handle(self, method, path, headers, body):
        if self.down:
            return 503, {"error": "maintenance"}, None
        if headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"error": "invalid token"}, None
        if path == "/v1/health" and method == "GET":
            return 200, {"ok": True}, None
        if path != "/v1/messages" or method != "POST":
            return 404, {"error": f"no route {method} {path}"}, None
        try:
            data = json.loads(body)
        except ValueError:
            return 400, {"error": "body is not JSON"}, None
        recipient = str(data.get("to") or data.get("recipient") or "")
        if recipient in self.answers:
            status, payload = self.answers[recipient]
            return status, payload, None
        with self.lock:
            self.count += 1
            self.received.append(data)
            number = self.count
        return 202, {"data": {"messageId": f"gw-{number}"}}, None
