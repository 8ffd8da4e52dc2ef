"""VERP: a Return-Path per delivery, so a bounce names the message it is about even when the
DSN quotes nothing of it: bounces+<request id, 32 hex digits>@<bounce domain>."""

from __future__ import annotations

import re
import uuid

VERP_LOCAL = "bounces"
_VERP = re.compile(rf"^{VERP_LOCAL}\+([0-9a-f]{{32}})@", re.IGNORECASE)


def verp_address(request_id: uuid.UUID | str, domain: str) -> str:
    hex_id = (
        request_id.hex if isinstance(request_id, uuid.UUID) else str(request_id).replace("-", "")
    )
    return f"{VERP_LOCAL}+{hex_id.lower()}@{domain}"


def verp_request_id(address: str) -> uuid.UUID | None:
    """The delivery request id in a VERP address (angle brackets allowed), or None."""
    match = _VERP.match(address.strip().strip("<>"))
    return uuid.UUID(match.group(1)) if match else None
