"""Machine opens and clicks: which hits on the open pixel and the click redirect were made by
software rather than by the recipient, and by which rule.

Mailbox providers and corporate mail filters fetch images and follow links on their own:
Apple Mail Privacy Protection loads every image of every message at delivery, Yahoo's proxy
prefetches them, and link scanners (Microsoft Defender Safe Links, Mimecast, Proofpoint,
Barracuda, ...) request every link of a message within seconds of its arrival. Counted as
engagement they inflate open and click rates, start "opened" workflows for people who never
read anything and pick the wrong A/B winner. Herald keeps them apart: a machine hit adds to
Delivery.machine_open_count / machine_click_count (RunStats.machine_opens / machine_clicks in
reports), its DeliveryEvent has `machine` set and the rule in `detail` ("machine: <rule>"),
and it never moves the delivery's status, opened_at or clicked_at, nor emits an engagement
event. A human open after a machine one counts as the first human open.

The rules, in the order they are tried (the first that matches names the hit):

Any hit (pixel or link):
- ``head``: a HEAD request (link checkers ask whether a URL exists, nobody reads a HEAD).
- ``prefetch``: a browser or client prefetch (``Sec-Purpose`` / ``Purpose: prefetch``).
- ``user-agent:<name>``: the User-Agent names a known proxy, scanner or bot (MACHINE_AGENTS:
  YahooMailProxy, Barracuda, Mimecast, Proofpoint, Safe Links previews, curl, Go and Python
  HTTP libraries, headless browsers, chat link previews, crawlers). An absent User-Agent is
  not evidence: some mail clients send none.

Opens only:
- ``apple-mpp``: the pixel is fetched from Apple's network 17.0.0.0/8 (Mail Privacy
  Protection's proxies fetch from there), or with the bare User-Agent "Mozilla/5.0" that
  those proxies send.
Gmail's GoogleImageProxy is NOT a machine open: Gmail fetches the images when the reader
opens the message (then serves them from its cache), so its first fetch is the reader's
open. A repeated open through it is not seen at all (cached), which undercounts, never
inflates.

Clicks only:
- ``scanner-network``: the click comes from a network of a mail security service that
  follows links (MACHINE_CLICK_NETWORKS: Microsoft Exchange Online Protection's published
  ranges), or from one listed in HERALD_MACHINE_NETWORKS.
- ``too-soon``: the click comes within HERALD_MACHINE_CLICK_SECONDS (default 10) of the
  message being sent: no person receives, opens, reads and clicks that fast; a scanner
  scanning the message on arrival does.
- ``trap-link``: the click is on the hidden trap link that campaigns.tracking.prepare_html
  adds to every tracked HTML email (an empty, invisible, unfocusable <a>: a person cannot
  see or click it, a scanner requesting every href does). ``trap``: every click of that
  message within TRAP_WINDOW of a trap hit, before or after it, is a machine click too.
- ``burst``: a click on one link of a message within BURST_SECONDS of a click on another link
  of the same message: a person clicks one link and reads the page; a scanner requests all
  of them at once. Both clicks become machine clicks.
Clicks found to be machine after they were recorded as human (trap, burst) are corrected
within the window (campaigns.ledger.delivery_clicks_to_machine); engagement events are
emitted only after the window has passed (marketing.engagement), so the correction comes
before anyone hears of the click.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.http import HttpRequest

# A trap hit marks the message's clicks this close to it as machine clicks, either side.
TRAP_WINDOW = timedelta(seconds=60)
# Clicks on two different links of one message this close together are a scanner's.
BURST_SECONDS = 1.0

RULE_PREFIX = "machine: "

# (rule name, pattern) tried in order against the User-Agent, case-insensitively.
MACHINE_AGENTS: tuple[tuple[str, str], ...] = (
    ("yahoo-proxy", r"YahooMailProxy"),
    ("barracuda", r"Barracuda"),
    ("mimecast", r"Mimecast"),
    ("proofpoint", r"Proofpoint|urldefense"),
    ("safe-links", r"SafeLinks|Microsoft Office Existence Discovery|BingPreview"),
    ("symantec", r"Symantec|MessageLabs"),
    ("trend-micro", r"TrendMicro|Trend Micro"),
    ("forcepoint", r"Forcepoint|Websense"),
    ("fortinet", r"FortiGuard|Fortinet"),
    ("sophos", r"Sophos"),
    ("cisco", r"IronPort|Cisco"),
    ("zscaler", r"Zscaler"),
    ("http-library", r"^(curl|Wget|python-requests|python-urllib|Go-http-client|Java/|okhttp)"),
    ("headless-browser", r"HeadlessChrome|PhantomJS|Puppeteer|Playwright"),
    (
        "link-preview",
        r"Slackbot|facebookexternalhit|SkypeUriPreview|WhatsApp|TelegramBot|Discordbot"
        r"|LinkedInBot|Twitterbot",
    ),
    ("crawler", r"(bot|crawler|spider)\b"),
)
# Apple Mail Privacy Protection's proxies: Apple's own network, and their bare User-Agent.
APPLE_NETWORK = ipaddress.ip_network("17.0.0.0/8")
APPLE_PROXY_AGENT = "Mozilla/5.0"
# Microsoft Exchange Online Protection (Defender Safe Links detonates links from there).
MACHINE_CLICK_NETWORKS = (
    "40.92.0.0/15",
    "40.107.0.0/16",
    "52.100.0.0/14",
    "104.47.0.0/17",
)


@dataclass(frozen=True)
class Hit:
    """What the tracking endpoints know of a request, for the rules."""

    method: str = "GET"
    user_agent: str = ""
    address: str = ""
    prefetch: bool = False


def hit_from_request(request: HttpRequest) -> Hit:
    purpose = request.headers.get("Sec-Purpose", "") or request.headers.get("Purpose", "")
    address = request.META.get("REMOTE_ADDR") or ""
    if getattr(settings, "HERALD_TRUST_X_FORWARDED_FOR", False):
        # The last address is the one our own reverse proxy appended; earlier ones are
        # whatever the client claimed.
        forwarded = request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
        address = forwarded or address
    return Hit(
        method=request.method or "GET",
        user_agent=request.headers.get("User-Agent", "")[:1000],
        address=address,
        prefetch="prefetch" in purpose.lower(),
    )


@functools.lru_cache(maxsize=1)
def _agents() -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((name, re.compile(pattern, re.IGNORECASE)) for name, pattern in MACHINE_AGENTS)


@functools.lru_cache(maxsize=4)
def _click_networks(extra: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    listed = [*MACHINE_CLICK_NETWORKS, *(part.strip() for part in extra.split(","))]
    return tuple(ipaddress.ip_network(part, strict=False) for part in listed if part)


def _address(hit: Hit) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(hit.address)
    except ValueError:
        return None


def _common_rule(hit: Hit) -> str | None:
    if hit.method == "HEAD":
        return "head"
    if hit.prefetch:
        return "prefetch"
    for name, pattern in _agents():
        if pattern.search(hit.user_agent):
            return f"user-agent:{name}"
    return None


def open_rule(hit: Hit) -> str | None:
    """The machine rule a pixel hit matches, or None for a human open."""
    rule = _common_rule(hit)
    if rule:
        return rule
    address = _address(hit)
    if address is not None and address in APPLE_NETWORK:
        return "apple-mpp"
    if hit.user_agent.strip() == APPLE_PROXY_AGENT:
        return "apple-mpp"
    return None


def click_rule(hit: Hit) -> str | None:
    """The machine rule a click matches on its own (without the message's other clicks and
    its send time, which campaigns.tracking checks in the database), or None."""
    rule = _common_rule(hit)
    if rule:
        return rule
    address = _address(hit)
    extra = getattr(settings, "HERALD_MACHINE_NETWORKS", "") or ""
    if address is not None and any(address in net for net in _click_networks(extra)):
        return "scanner-network"
    return None


def click_too_soon() -> timedelta:
    """Clicks closer than this to the message's send are a scanner's."""
    return timedelta(seconds=getattr(settings, "HERALD_MACHINE_CLICK_SECONDS", 10))


def machine_detail(rule: str) -> str:
    return f"{RULE_PREFIX}{rule}"
