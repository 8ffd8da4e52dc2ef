"""A local service implementing the provider contract over HTTP, as Herald's
external-campaign provider documents it (integrations/providers/external.py): templates,
contact export, prepare (idempotent by campaign id), create (idempotent by campaign id),
stats, messenger types and bots; bearer-token authentication; and the signed webhook
requests such a service sends back.

    with ContractService(api_key="k") as service:
        service.url()                     # the base URL
        service.templates_add(120)        # t-1 … t-120
        service.prepared["herald-run-3"]  # every slice prepare received, in order
        service.campaigns                 # campaignId → {"id": ..., **the create body}
        service.create_calls              # POST /campaigns received (also repeats)
        service.fail["POST /campaigns"] = [503]     # the next answers of a route
        service.lose_response["POST /campaigns"] = 1  # do it, then answer 502
        service.delay["POST /campaigns"] = 30.0     # do it, then answer that much later
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.fake_http_gateway import LocalHTTPServer


def webhook_headers(secret: str, body: bytes, timestamp: float | None = None) -> dict[str, str]:
    """The headers the service signs a webhook request with (X-Timestamp, X-Signature)."""
    stamp = str(int(time.time() if timestamp is None else timestamp))
    signature = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    return {"X-Timestamp": stamp, "X-Signature": signature.hexdigest()}


class ContractService(LocalHTTPServer):
    def __init__(self, api_key: str = "contract-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.templates: list[dict[str, Any]] = []
        self.exported: dict[int, dict[str, Any]] = {}
        self.prepared: dict[str, list[list[str]]] = {}
        self.audiences: dict[str, set[str]] = {}
        self.campaigns: dict[str, dict[str, Any]] = {}
        self.create_calls = 0
        self.stats: dict[str, dict[str, Any]] = {}
        self.stats_calls = 0
        self.fail: dict[str, list[int]] = {}
        self.lose_response: dict[str, int] = {}
        self.delay: dict[str, float] = {}
        self.down = False
        self.bots = [{"id": "b1", "name": "Shop bot", "messengerType": "telegram", "link": ""}]

    def templates_add(self, count: int) -> None:
        for n in range(len(self.templates) + 1, len(self.templates) + count + 1):
            self.templates.append(
                {
                    "id": f"t-{n}",
                    "name": f"Template {n}",
                    "subject": f"Subject {n}",
                    "html": f"<p>Template number {n}</p>",
                }
            )

    def _failure(self, route: str) -> int | None:
        queue = self.fail.get(route)
        if queue:
            return queue.pop(0)
        return None

    def handle(self, method, path, headers, body):
        if self.down:
            return 503, {"error": "service unavailable"}, None
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, {"error": "invalid API key"}, None
        parts = urlsplit(path)
        route_path = re.sub(
            r"^/campaigns/[^/]+/(prepare|stats)$", r"/campaigns/{id}/\1", parts.path
        )
        route_path = re.sub(r"^/templates/[^/]+/html$", "/templates/{id}/html", route_path)
        route = f"{method} {route_path}"
        status = self._failure(route)
        if status is not None:
            return status, {"error": f"injected {status}"}, None
        try:
            data = json.loads(body) if body else None
        except ValueError:
            return 400, {"error": "body is not JSON"}, None
        with self.lock:
            answer = self._route(method, parts.path, parse_qs(parts.query), data)
            if answer[0] < 300 and self.lose_response.get(route, 0) > 0:
                self.lose_response[route] -= 1
                return 502, {"error": "bad gateway (the work was done)"}, None
        if self.delay.get(route):
            time.sleep(self.delay[route])
        return answer[0], answer[1], None

    def _route(self, method: str, path: str, query: dict[str, list[str]], data: Any):
        if method == "GET" and path == "/templates":
            try:
                offset = int(query.get("offset", ["0"])[0])
                limit = int(query.get("limit", ["50"])[0])
            except ValueError:
                return 400, {"error": "offset and limit must be integers"}
            return 200, self.templates[offset : offset + limit]
        match = re.fullmatch(r"/templates/([^/]+)/html", path)
        if method == "GET" and match:
            for template in self.templates:
                if template["id"] == match.group(1):
                    return 200, {"id": template["id"], "html": template["html"]}
            return 404, {"error": f"no template {match.group(1)}"}
        if method == "POST" and path == "/templates":
            if not isinstance(data, dict) or not data.get("html") or not data.get("name"):
                return 400, {"error": "html and name are required"}
            if data.get("id"):
                for template in self.templates:
                    if template["id"] == data["id"]:
                        template.update(html=data["html"], name=data["name"])
                        return 200, {"id": template["id"]}
                return 404, {"error": f"no template {data['id']}"}
            new_id = f"t-{len(self.templates) + 1}"
            self.templates.append(
                {"id": new_id, "name": data["name"], "subject": "", "html": data["html"]}
            )
            return 201, {"id": new_id}
        if method == "POST" and path == "/contacts/export":
            for contact in (data or {}).get("contacts", []):
                self.exported[int(contact["id"])] = contact
            return 200, {"exported": len((data or {}).get("contacts", []))}
        match = re.fullmatch(r"/campaigns/([^/]+)/prepare", path)
        if method == "POST" and match:
            campaign_id = match.group(1)
            if campaign_id in self.campaigns:
                return 409, {"error": "campaign already created"}
            contacts = [str(c) for c in (data or {}).get("contacts", [])]
            self.prepared.setdefault(campaign_id, []).append(contacts)
            self.audiences.setdefault(campaign_id, set()).update(contacts)
            return 200, {"prepared": len(self.audiences[campaign_id])}
        if method == "POST" and path in ("/campaigns", "/messenger-campaigns"):
            self.create_calls += 1
            campaign_id = (data or {}).get("campaignId")
            if not campaign_id:
                return 400, {"error": "campaignId is required"}
            if campaign_id in self.campaigns:
                return 200, {"id": self.campaigns[campaign_id]["id"]}
            if not self.audiences.get(campaign_id):
                return 400, {"error": "nothing was prepared for this campaign"}
            external_id = f"ext-{len(self.campaigns) + 1}"
            self.campaigns[campaign_id] = {"id": external_id, **data}
            self.stats[external_id] = {"status": "sending", "sent": 0}
            return 201, {"id": external_id}
        match = re.fullmatch(r"/campaigns/([^/]+)/stats", path)
        if method == "GET" and match:
            self.stats_calls += 1
            if match.group(1) not in self.stats:
                return 404, {"error": f"no campaign {match.group(1)}"}
            return 200, self.stats[match.group(1)]
        if method == "GET" and path == "/messenger-types":
            return 200, ["telegram", "viber"]
        if method == "GET" and path == "/messenger-bots":
            return 200, self.bots
        return 404, {"error": f"no route {method} {path}"}
