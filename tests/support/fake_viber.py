"""A local Viber REST bot API server (http.server in a thread) speaking the API as
https://developers.viber.com/docs/api/rest-bot-api/ documents it, recording every call.

    with FakeViber() as viber:
        ...point the integration's API URL at viber.url...
        viber.calls              # [(method, body, headers)], in arrival order
        viber.sent("user-1")     # texts Viber accepted for that user

Requests: POST <url>/<method> with a JSON body and X-Viber-Auth-Token. Every answer is HTTP
200 with a JSON body whose `status` says the outcome, as the real API: 2 "invalidAuthToken"
for another token, 3 "badData" for a body that is not JSON or a send without receiver/text,
6 "notSubscribed" for receivers in `unsubscribed`, 5 "receiverNotRegistered" for `unknown`,
12 "tooManyRequests" for the next `throttle[receiver]` sends to a receiver; with
`suspended` set, 9 "publicAccountSuspended" for every call.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class FakeViber:
    token: str = "4453b6ac1b35a1a5-e2d1aa3e9a7e1b55-2b4d36b7e0b6dc3c"
    name: str = "Herald Shop"
    uri: str = "heraldshop"
    unsubscribed: set[str] = field(default_factory=set)
    unknown: set[str] = field(default_factory=set)
    throttle: dict[str, int] = field(default_factory=dict)
    suspended: bool = False
    # Every call answered 503 without a JSON body (Viber down).
    unavailable: bool = False
    calls: list[tuple[str, Any, dict[str, str]]] = field(default_factory=list)
    accepted: list[tuple[str, str]] = field(default_factory=list)

    def __enter__(self) -> FakeViber:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                method = self.path.rstrip("/").rsplit("/", 1)[-1]
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = None
                headers = {k.lower(): v for k, v in self.headers.items()}
                fake.calls.append((method, body, headers))
                if fake.unavailable:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                answer = fake.answer(method, body, headers.get("x-viber-auth-token", ""))
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/pa"

    def sent(self, receiver: str) -> list[str]:
        """Texts Viber accepted for the receiver."""
        return [text for to, text in self.accepted if to == receiver]

    def answer(self, method: str, body: Any, token: str) -> dict[str, Any]:
        if token != self.token:
            return {"status": 2, "status_message": "invalidAuthToken"}
        if self.suspended:
            return {"status": 9, "status_message": "publicAccountSuspended"}
        if not isinstance(body, dict):
            return {"status": 3, "status_message": "badData"}
        if method == "get_account_info":
            return {
                "status": 0,
                "status_message": "ok",
                "id": "pa:5837493829",
                "name": self.name,
                "uri": self.uri,
            }
        if method == "set_webhook":
            if not str(body.get("url", "")).startswith(("http://", "https://")):
                return {"status": 1, "status_message": "invalidUrl"}
            return {"status": 0, "status_message": "ok", "event_types": body.get("event_types")}
        if method == "send_message":
            receiver = body.get("receiver")
            if not receiver or body.get("type") != "text" or not body.get("text"):
                return {"status": 3, "status_message": "badData"}
            if self.throttle.get(receiver):
                self.throttle[receiver] -= 1
                return {"status": 12, "status_message": "tooManyRequests"}
            if receiver in self.unsubscribed:
                return {"status": 6, "status_message": "notSubscribed"}
            if receiver in self.unknown:
                return {"status": 5, "status_message": "receiverNotRegistered"}
            self.accepted.append((receiver, body["text"]))
            token_number = 5741311803571721000 + len(self.calls)
            return {"status": 0, "status_message": "ok", "message_token": token_number}
        return {"status": 1, "status_message": "invalidUrl"}
