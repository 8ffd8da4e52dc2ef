"""A local Telegram Bot API server (http.server in a thread) that speaks the Bot API's HTTP
interface as https://core.telegram.org/bots/api documents it, and records every call.

    with FakeTelegram(token="123:abc") as bot:
        ...point the integration's API URL at bot.url...
        bot.calls            # [Call(method, params)], in arrival order
        bot.sent("42")       # texts sent to chat 42

Requests: GET or POST <url>/bot<token>/<method>, parameters in the query string, a JSON body
or a form body (application/x-www-form-urlencoded). Answers: {"ok": true, "result": …}, or
{"ok": false, "error_code": N, "description": "…"} with HTTP status N, as the real API:
401 "Unauthorized" for another token, 404 "Not Found" for an unknown method, 400 "Bad
Request: …" for bad parameters (setWebhook wants an https URL and a secret token of
A-Z a-z 0-9 _ -; sendMessage a chat and 1-4096 characters of text), 403 "Forbidden: bot was
blocked by the user" for chats in `blocked` ("user is deactivated" for `deactivated`), 400
"Bad Request: chat not found" for chats in `unknown`, and 429 "Too Many Requests: retry
after N" with parameters.retry_after for the next `throttle[chat]` messages to a chat.
With `bad_gateway` set, every request gets the HTML 502 page of the proxy in front of the
API (what clients see while Telegram's servers restart).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    content_type: str = ""


class BotAPIError(Exception):
    def __init__(self, code: int, description: str, parameters: dict | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


@dataclass
class FakeTelegram:
    token: str = "123456:TEST-token_for-herald"
    bot_id: int = 123456
    username: str = "herald_shop_bot"
    first_name: str = "Herald Shop"
    blocked: set[str] = field(default_factory=set)
    deactivated: set[str] = field(default_factory=set)
    unknown: set[str] = field(default_factory=set)
    # chat id → how many of the next sendMessage calls to it answer 429.
    throttle: dict[str, int] = field(default_factory=dict)
    retry_after: int = 3
    bad_gateway: bool = False
    calls: list[Call] = field(default_factory=list)
    webhook: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._message_ids: dict[str, int] = {}
        self._server: ThreadingHTTPServer | None = None
        self.messages: list[dict[str, Any]] = []

    # --- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> FakeTelegram:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._handle(self)

            def do_POST(self) -> None:
                fake._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake Bot API is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # --- what tests read ---------------------------------------------------------------

    def methods(self) -> list[str]:
        return [call.method for call in self.calls]

    def sent(self, chat_id: str | int | None = None) -> list[str]:
        return [
            message["text"]
            for message in self.messages
            if chat_id is None or message["chat_id"] == str(chat_id)
        ]

    # --- the protocol ------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        if self.bad_gateway:
            page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
            request.send_response(502)
            request.send_header("Content-Type", "text/html")
            request.send_header("Content-Length", str(len(page)))
            request.end_headers()
            request.wfile.write(page)
            return
        parts = urlsplit(request.path)
        params: dict[str, Any] = dict(parse_qsl(parts.query))
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip()
        try:
            if body and content_type == "application/json":
                loaded = json.loads(body)
                if not isinstance(loaded, dict):
                    raise BotAPIError(400, "Bad Request: the body must be a JSON object")
                params.update(loaded)
            elif body and content_type == "application/x-www-form-urlencoded":
                params.update(parse_qsl(body.decode()))
            match = re.fullmatch(r"/bot([^/]+)/(\w+)", parts.path)
            if match is None:
                raise BotAPIError(404, "Not Found")
            token, method = match.groups()
            if token != self.token:
                raise BotAPIError(401, "Unauthorized")
            with self._lock:
                self.calls.append(Call(method, params, content_type))
            handler = getattr(self, f"_method_{method.lower()}", None)
            if handler is None:
                raise BotAPIError(404, "Not Found")
            result = handler(params)
            self._reply(request, 200, {"ok": True, "result": result})
        except BotAPIError as exc:
            answer: dict[str, Any] = {
                "ok": False,
                "error_code": exc.code,
                "description": exc.description,
            }
            if exc.parameters:
                answer["parameters"] = exc.parameters
            self._reply(request, exc.code, answer)
        except ValueError:
            self._reply(
                request,
                400,
                {"ok": False, "error_code": 400, "description": "Bad Request: can't parse JSON"},
            )

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, answer: dict) -> None:
        data = json.dumps(answer).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _me(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _method_getme(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._me()

    def _method_setwebhook(self, params: dict[str, Any]) -> bool:
        url = str(params.get("url") or "")
        if url and not url.startswith("https://"):
            raise BotAPIError(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_TOKEN.fullmatch(str(secret)):
            raise BotAPIError(400, "Bad Request: secret token contains unallowed characters")
        allowed = params.get("allowed_updates")
        if isinstance(allowed, str):
            allowed = json.loads(allowed)
        self.webhook = {"url": url, "secret_token": secret, "allowed_updates": allowed}
        return True

    def _method_getwebhookinfo(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": 0,
            "allowed_updates": self.webhook.get("allowed_updates") or [],
        }

    def _method_sendmessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = str(params.get("chat_id") or "")
        text = params.get("text")
        if not chat:
            raise BotAPIError(400, "Bad Request: chat_id is empty")
        if not isinstance(text, str) or not text.strip():
            raise BotAPIError(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            raise BotAPIError(400, "Bad Request: message is too long")
        mode = params.get("parse_mode")
        if mode and str(mode).lower() not in ("html", "markdown", "markdownv2"):
            raise BotAPIError(400, f"Bad Request: unsupported parse_mode {mode}")
        with self._lock:
            if self.throttle.get(chat, 0) > 0:
                self.throttle[chat] -= 1
                raise BotAPIError(
                    429,
                    f"Too Many Requests: retry after {self.retry_after}",
                    {"retry_after": self.retry_after},
                )
            if chat in self.blocked:
                raise BotAPIError(403, "Forbidden: bot was blocked by the user")
            if chat in self.deactivated:
                raise BotAPIError(403, "Forbidden: user is deactivated")
            if chat in self.unknown:
                raise BotAPIError(400, "Bad Request: chat not found")
            message_id = self._message_ids.get(chat, 0) + 1
            self._message_ids[chat] = message_id
            self.messages.append({"chat_id": chat, "text": text, "parse_mode": mode})
        return {
            "message_id": message_id,
            "from": self._me(),
            "chat": {"id": int(chat) if chat.lstrip("-").isdigit() else chat, "type": "private"},
            "date": 1765000000,
            "text": text,
        }


def update_message(update_id: int, chat_id: int, text: str) -> dict[str, Any]:
    """An Update with a private message, as Telegram posts it to a webhook."""
    user = {"id": chat_id, "is_bot": False, "first_name": "Olena", "language_code": "en"}
    entities = []
    if text.startswith("/"):
        entities = [{"offset": 0, "length": len(text.split(" ")[0]), "type": "bot_command"}]
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "from": user,
            "chat": {"id": chat_id, "first_name": "Olena", "type": "private"},
            "date": 1765000000,
            "text": text,
            "entities": entities,
        },
    }


def update_member(update_id: int, chat_id: int, status: str, old: str = "member") -> dict:
    """An Update saying the bot's status in a chat changed ("kicked": the user blocked it)."""
    user = {"id": chat_id, "is_bot": False, "first_name": "Olena"}
    bot = {"id": 123456, "is_bot": True, "first_name": "Herald Shop", "username": "herald_shop_bot"}
    return {
        "update_id": update_id,
        "my_chat_member": {
            "chat": {"id": chat_id, "first_name": "Olena", "type": "private"},
            "from": user,
            "date": 1765000000,
            "old_chat_member": {"user": bot, "status": old},
            "new_chat_member": {"user": bot, "status": status, "until_date": 0},
        },
    }
