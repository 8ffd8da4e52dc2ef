"""Email tracking and unsubscribe: signed tokens, the HTML rewriting done before sending, the
List-Unsubscribe headers, and the recording of opens, clicks and unsubscribes in the ledger.

Tokens end up in every link of every email, so they are short: the delivery id in base 36, a
dot, and an HMAC-SHA256 of it cut to 80 bits in base 32. Everything is lower case so that the
mailto form (unsubscribe+<token>@domain) survives mail servers that fold the case of mailbox
names; checking accepts any case. Each purpose has its own salt: a pixel token cannot
unsubscribe anyone, and a click token signs the target URL together with the delivery, so the
redirect only ever goes to a URL that was in the message (no open redirect). Tokens made with a
key in SECRET_KEY_FALLBACKS keep working after a key rotation.

Recording a hit is one UPDATE plus one history row: nothing is recomputed per hit (the
analytics roll-up reads the ledger on its own schedule).
"""

# Table names below come from the models; every value goes through parameters.
# ruff: noqa: S608

import base64
import functools
import hmac
import html as html_lib
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.db import connection, transaction
from django.utils.crypto import salted_hmac

from campaigns import engagement
from campaigns.ledger import delivery_clicks_to_machine
from campaigns.models import Delivery, DeliveryEvent, DeliveryStatus
from campaigns.utm import UtmTags, url_tag
from contacts.models import ChannelType, Unsubscribed
from contacts.unsubscribed import unsubscribed_add, unsubscribed_remove

# What a template author writes where the unsubscribe link goes, e.g.
# <a href="%UNSUBSCRIBE_URL%">Unsubscribe</a>. An editor may have percent-encoded it.
UNSUBSCRIBE_PLACEHOLDER = "%UNSUBSCRIBE_URL%"
_PLACEHOLDERS = (UNSUBSCRIBE_PLACEHOLDER, "%25UNSUBSCRIBE_URL%25")

ONE_CLICK_BODY = "List-Unsubscribe=One-Click"

# 80 bits: forging one token takes ~2^79 online guesses, each a request to us.
_SIG_BYTES = 10
_SIG_CHARS = 16  # base 32 of 10 bytes, no padding
_ID_RE = re.compile(r"[0-9a-z]{1,13}")  # 13 base-36 digits hold any bigint
_MAX_ID = 2**63 - 1
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"

PURPOSE_OPEN = "open"
PURPOSE_CLICK = "click"
PURPOSE_UNSUBSCRIBE = "unsubscribe"
# A workflow bound to a button (marketing.workflows.buttons): `%WORKFLOW_URL:<button key>%`
# in a message becomes the recipient's own signed link that starts that workflow for them.
PURPOSE_WORKFLOW_BUTTON = "workflow-button"
_WORKFLOW_PLACEHOLDER = re.compile(r"%(?:25)?WORKFLOW_URL:([A-Za-z0-9_-]{1,64})%(?:25)?")
PURPOSE_TRAP = "trap"

# Statuses from which an engagement moves the delivery forward (never backwards).
_OPEN_FROM = ("sent", "delivered")
_CLICK_FROM = ("sent", "delivered", "opened")
_UNSUBSCRIBE_FROM = ("sent", "delivered", "opened", "clicked")


# --- tokens -----------------------------------------------------------------------------------


def _base36(number: int) -> str:
    digits = []
    while True:
        number, rest = divmod(number, 36)
        digits.append(_B36[rest])
        if not number:
            return "".join(reversed(digits))


@functools.lru_cache(maxsize=32)
def _keyed_hmac(purpose: str, secret: str):
    """salted_hmac's HMAC for a purpose and key, before any message: deriving and keying it
    is most of the cost of a token, and every email carries several."""
    return salted_hmac(f"herald.tracking.{purpose}", b"", secret=secret, algorithm="sha256")


# Small: building one email asks for its unsubscribe token three or four times in a row
# (List-Unsubscribe URL and mailto, HTML footer, text footer).
@functools.lru_cache(maxsize=64)
def _signature(purpose: str, delivery_id: int, extra: str, secret: str) -> str:
    mac = _keyed_hmac(purpose, secret).copy()
    mac.update(f"{delivery_id}|{extra}".encode())
    digest = mac.digest()[:_SIG_BYTES]
    return base64.b32encode(digest).decode().rstrip("=").lower()


def token_make(*, purpose: str, delivery_id: int, extra: str = "") -> str:
    signature = _signature(purpose, delivery_id, extra, settings.SECRET_KEY)
    return f"{_base36(delivery_id)}.{signature}"


def token_check(*, purpose: str, token: str, extra: str = "") -> int | None:
    """The delivery id a token was made for, or None when it is garbled or forged."""
    if not isinstance(token, str):
        return None
    id_part, dot, signature = token.strip().lower().partition(".")
    if not dot or len(signature) != _SIG_CHARS or not _ID_RE.fullmatch(id_part):
        return None
    delivery_id = int(id_part, 36)
    if not 0 < delivery_id <= _MAX_ID:
        return None
    for secret in (settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())):
        expected = _signature(purpose, delivery_id, extra, secret)
        if hmac.compare_digest(signature.encode(), expected.encode()):
            return delivery_id
    return None


# --- URLs and headers -----------------------------------------------------------------------


def _base_url() -> str:
    return settings.HERALD_BASE_URL.rstrip("/")


def open_url(delivery_id: int) -> str:
    return f"{_base_url()}/t/o/{token_make(purpose=PURPOSE_OPEN, delivery_id=delivery_id)}.gif"


def click_url(delivery_id: int, url: str) -> str:
    token = token_make(purpose=PURPOSE_CLICK, delivery_id=delivery_id, extra=url)
    return f"{_base_url()}/t/c/{token}?u={_quoted(url)}"


@functools.lru_cache(maxsize=512)  # a campaign's few links, in every message
def _quoted(url: str) -> str:
    return quote(url, safe="")


def unsubscribe_url(delivery_id: int) -> str:
    return f"{_base_url()}/u/{token_make(purpose=PURPOSE_UNSUBSCRIBE, delivery_id=delivery_id)}"


def workflow_button_url(*, button_key: str, contact_id: int) -> str:
    """The signed link that starts the workflow with this button key for this contact."""
    token = token_make(purpose=PURPOSE_WORKFLOW_BUTTON, delivery_id=contact_id, extra=button_key)
    return f"{_base_url()}/w/{button_key}/?c={token}"


def _workflow_links(content: str, delivery: Delivery, *, escape: bool) -> str:
    """`%WORKFLOW_URL:<key>%` placeholders as the recipient's workflow button links; left as
    they are in a message to an address that is no contact (nobody to start it for)."""
    if "WORKFLOW_URL:" not in content or delivery.contact_id is None:
        return content
    contact_id = delivery.contact_id

    def link(match: re.Match) -> str:
        url = workflow_button_url(button_key=match.group(1), contact_id=contact_id)
        return html_lib.escape(url, quote=True) if escape else url

    return _WORKFLOW_PLACEHOLDER.sub(link, content)


def _mailto_domain() -> str:
    configured = getattr(settings, "HERALD_UNSUBSCRIBE_MAILTO_DOMAIN", "") or ""
    if configured.strip():
        return configured.strip()
    host = urlsplit(_base_url()).hostname or "localhost"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    # An address literal is only valid in brackets (RFC 5321 4.1.3).
    return f"[IPv6:{address}]" if address.version == 6 else f"[{address}]"


def unsubscribe_mailto(delivery_id: int) -> str:
    token = token_make(purpose=PURPOSE_UNSUBSCRIBE, delivery_id=delivery_id)
    return f"mailto:unsubscribe+{token}@{_mailto_domain()}?subject=unsubscribe"


def unsubscribe_address_check(address: str) -> int | None:
    """The delivery id of a mail sent to the List-Unsubscribe mailbox
    (unsubscribe+<token>@domain), or None; for the inbound-mail webhook."""
    if not isinstance(address, str):
        return None
    local = address.strip().strip("<>").rpartition("@")[0]
    prefix, plus, token = local.partition("+")
    if not plus or prefix.lower() != "unsubscribe":
        return None
    return token_check(purpose=PURPOSE_UNSUBSCRIBE, token=token)


def list_unsubscribe_headers(delivery: Delivery) -> dict[str, str]:
    """List-Unsubscribe (RFC 2369: the https URL first, then the mailto) and
    List-Unsubscribe-Post (RFC 8058 one-click: mailbox providers POST that body to the URL).
    RFC 8058 wants an https URL: set HERALD_BASE_URL to the public https address."""
    delivery_id = _saved_id(delivery)
    https, mailto = unsubscribe_url(delivery_id), unsubscribe_mailto(delivery_id)
    return {
        "List-Unsubscribe": f"<{https}>, <{mailto}>",
        "List-Unsubscribe-Post": ONE_CLICK_BODY,
    }


# --- HTML rewriting -------------------------------------------------------------------------

# An <a> start tag whose quoted attribute values may contain '>'.
_A_TAG = re.compile(r"""<a(?=[\s>/])(?:[^>"']|"[^"]*"|'[^']*')*>""", re.IGNORECASE)
_ATTRIBUTE = re.compile(
    r"""([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?""", re.IGNORECASE
)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_BODY_START = re.compile(r"""<body(?=[\s>])(?:[^>"']|"[^"]*"|'[^']*')*>""", re.IGNORECASE)

_FOOTER = (
    '<p style="font-size:12px;line-height:18px;color:#6b7280;text-align:center;'
    "margin:24px 0 0 0\">Don't want these emails any more? "
    '<a href="{url}" style="color:#6b7280;text-decoration:underline">Unsubscribe</a>.</p>'
)
# The trap link (campaigns.engagement): empty, not displayed, out of the tab order and hidden
# from screen readers, so no person can follow it; scanners that request every href do.
_TRAP = (
    '<a href="{url}" style="display:none;font-size:0;line-height:0;max-height:0;'
    'overflow:hidden;mso-hide:all" aria-hidden="true" tabindex="-1"></a>'
)
_PIXEL = (
    '<img src="{url}" width="1" height="1" alt="" '
    'style="display:block;width:1px;height:1px;border:0;margin:0;padding:0">'
)


def _trackable(url: str, own_prefixes: tuple[str, ...]) -> bool:
    if url.startswith(own_prefixes):
        return False  # our unsubscribe link or an already tracked link
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


@functools.lru_cache(maxsize=512)
def _tag_link(tag: str, base: str, utm: UtmTags | None = None) -> tuple[str, str, str] | None:
    """(text before the href value, the URL to track, text after it) of an <a> start tag,
    or None when it is left alone. The URL carries the campaign's UTM tags (`utm`), which
    are part of the cache key: another campaign's tags never leak in. Kept per tag: a
    campaign sends the same tags in every message, and only the token in the tracked URL
    differs."""
    own_prefixes = (f"{base}/u/", f"{base}/t/")
    # Attributes start after "<a"; the first href wins, as in browsers.
    for attribute in _ATTRIBUTE.finditer(tag, 2):
        if attribute.group(1).lower() != "href":
            continue
        group = next((g for g in (2, 3, 4) if attribute.group(g) is not None), None)
        if group is None:
            return None
        url = html_lib.unescape(attribute.group(group)).strip()
        if not _trackable(url, own_prefixes):
            return None
        if utm is not None:
            url = url_tag(url, utm)
        start, end = attribute.span(group)
        if group == 4:  # unquoted value: quote the new one
            return f'{tag[:start]}"', url, f'"{tag[end:]}'
        return tag[:start], url, tag[end:]
    return None


def _rewrite_links(html: str, delivery_id: int, utm: UtmTags | None = None) -> str:
    base = _base_url()

    def rewrite_tag(tag_match: re.Match) -> str:
        tag = tag_match.group(0)
        link = _tag_link(tag, base, utm)
        if link is None:
            return tag
        before, url, after = link
        return before + html_lib.escape(click_url(delivery_id, url), quote=True) + after

    return _A_TAG.sub(rewrite_tag, html)


def _insert_before_body_end(html: str, fragment: str) -> str:
    ends = list(_BODY_END.finditer(html))
    if not ends:
        return html + fragment
    position = ends[-1].start()
    return html[:position] + fragment + html[position:]


def _insert_after_body_start(html: str, fragment: str) -> str:
    start = _BODY_START.search(html)
    position = start.end() if start else 0
    return html[:position] + fragment + html[position:]


def prepare_html(html: str, delivery: Delivery, utm: UtmTags | None = None) -> str:
    """The rendered HTML of one email as it is sent to `delivery`'s recipient:

    - every http(s) link (href of <a>) goes through a signed click URL that redirects to it;
      mailto:, tel:, #anchors, relative links and the unsubscribe link are left alone;
    - with `utm` (the campaign's UTM tags, campaigns.utm), the URL a tracked link redirects
      to carries the utm_* parameters it did not already have;
    - ``%WORKFLOW_URL:<button key>%`` becomes the recipient's link that starts the workflow
      bound to that button (then tracked as any link);
    - the placeholder ``%UNSUBSCRIBE_URL%`` (anywhere: in an href or in the text) becomes this
      recipient's unsubscribe page URL; a template author puts it where the link should be,
      e.g. ``<a href="%UNSUBSCRIBE_URL%">Unsubscribe</a>``;
    - when the HTML has no unsubscribe link (neither the placeholder nor the URL), a small
      footer with one is added before </body>;
    - a 1x1 open pixel is added before </body> (at the end when there is no </body>);
    - a hidden trap link (campaigns.engagement) is added right after <body> (at the start
      when there is none), first in document order, as scanners walk the links.
    """
    delivery_id = _saved_id(delivery)
    unsubscribe = unsubscribe_url(delivery_id)
    escaped_unsubscribe = html_lib.escape(unsubscribe, quote=True)
    has_unsubscribe = unsubscribe in html
    for placeholder in _PLACEHOLDERS:
        if placeholder in html:
            has_unsubscribe = True
            html = html.replace(placeholder, escaped_unsubscribe)
    html = _workflow_links(html, delivery, escape=True)
    html = _rewrite_links(html, delivery_id, utm)
    fragment = ""
    if not has_unsubscribe:
        fragment += _FOOTER.format(url=escaped_unsubscribe)
    fragment += _PIXEL.format(url=html_lib.escape(open_url(delivery_id), quote=True))
    html = _insert_before_body_end(html, fragment)
    trap = _TRAP.format(url=html_lib.escape(trap_url(delivery_id), quote=True))
    return _insert_after_body_start(html, trap)


def prepare_text(text: str, delivery: Delivery) -> str:
    """The plain-text part as sent: ``%UNSUBSCRIBE_URL%`` becomes the recipient's unsubscribe
    URL and ``%WORKFLOW_URL:<button key>%`` their workflow button link; without an unsubscribe
    link, an "Unsubscribe: <url>" line is added at the end. Links in plain text are not
    rewritten (a reader copies them; a long redirect would only get in the way)."""
    unsubscribe = unsubscribe_url(_saved_id(delivery))
    has_unsubscribe = unsubscribe in text
    for placeholder in _PLACEHOLDERS:
        if placeholder in text:
            has_unsubscribe = True
            text = text.replace(placeholder, unsubscribe)
    text = _workflow_links(text, delivery, escape=False)
    if has_unsubscribe:
        return text
    return f"{text.rstrip()}\n\n--\nUnsubscribe: {unsubscribe}\n"


def _saved_id(delivery: Delivery) -> int:
    if delivery.pk is None:
        raise ValueError("tracking links need a saved delivery (its id is in the tokens)")
    return delivery.pk


# --- recording --------------------------------------------------------------------------------


def _engagement_record(
    *, delivery_id: int, counter: str, stamps: tuple[str, ...], from_statuses, status, url: str
) -> bool:
    table = Delivery._meta.db_table
    events = DeliveryEvent._meta.db_table
    stamp_sets = ", ".join(f"{stamp} = COALESCE(d.{stamp}, now())" for stamp in stamps)
    # One statement: the counter, the first-time stamps, the forward-only status and the
    # history row commit together; concurrent hits on one row queue on its lock and each
    # adds one.
    sql = f"""
        WITH hit AS (
            UPDATE {table} d
               SET {counter} = d.{counter} + 1, {stamp_sets},
                   status = CASE WHEN d.status = ANY(%s) THEN %s ELSE d.status END
             WHERE d.id = %s
            RETURNING d.id, d.period
        )
        INSERT INTO {events} (delivery_id, status, at, detail, url, period)
        SELECT id, %s, now(), '', %s, period FROM hit
        RETURNING delivery_id
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(from_statuses), status, delivery_id, status, url[:2000]])
        return cursor.fetchone() is not None


def _machine_record(*, delivery_id: int, counter: str, status: str, url: str, rule: str) -> bool:
    """A machine's open or click: its own counter and a history row marked `machine` with the
    rule; the status, the stamps and the human counters stay as they are."""
    table = Delivery._meta.db_table
    events = DeliveryEvent._meta.db_table
    sql = f"""
        WITH hit AS (
            UPDATE {table} d SET {counter} = d.{counter} + 1 WHERE d.id = %s
            RETURNING d.id, d.period
        )
        INSERT INTO {events} (delivery_id, status, at, detail, url, machine, period)
        SELECT id, %s, now(), %s, %s, true, period FROM hit
        RETURNING delivery_id
    """
    detail = engagement.machine_detail(rule)
    with connection.cursor() as cursor:
        cursor.execute(sql, [delivery_id, status, detail, url[:2000]])
        return cursor.fetchone() is not None


def delivery_open_record(*, delivery_id: int, hit: engagement.Hit | None = None) -> bool:
    """Count an open of the pixel (a human's, or apart a machine's: campaigns.engagement);
    False when the delivery no longer exists."""
    rule = engagement.open_rule(hit or engagement.Hit())
    if rule is not None:
        return _machine_record(
            delivery_id=delivery_id,
            counter="machine_open_count",
            status=DeliveryStatus.OPENED,
            url="",
            rule=rule,
        )
    return _engagement_record(
        delivery_id=delivery_id,
        counter="open_count",
        stamps=("opened_at",),
        from_statuses=_OPEN_FROM,
        status=DeliveryStatus.OPENED,
        url="",
    )


# What a click's own message says about it: whether it came too soon after the send, whether
# the trap link was hit around it, whether another link was clicked just before it. Read
# with the delivery row locked, so concurrent clicks of one message are judged in turn.
_CLICK_CONTEXT_SQL = f"""
    SELECT d.sent_at IS NOT NULL AND now() - d.sent_at < make_interval(secs => %s),
           EXISTS (SELECT 1 FROM {DeliveryEvent._meta.db_table} e
                    WHERE e.delivery_id = d.id AND e.status = 'clicked' AND e.machine
                      AND e.detail = %s AND e.at >= now() - make_interval(secs => %s)),
           EXISTS (SELECT 1 FROM {DeliveryEvent._meta.db_table} e
                    WHERE e.delivery_id = d.id AND e.status = 'clicked' AND e.url <> %s
                      AND e.at >= now() - make_interval(secs => %s))
      FROM {Delivery._meta.db_table} d WHERE d.id = %s FOR UPDATE OF d
"""


@transaction.atomic
def delivery_click_record(
    *, delivery_id: int, url: str, hit: engagement.Hit | None = None, trap: bool = False
) -> bool:
    """Count a click on `url`. A click proves the message was opened (images may be
    blocked), so it also sets opened_at the first time; open_count stays the pixel's.

    Machine clicks (campaigns.engagement) are counted apart. `trap` is a click on the hidden
    trap link: always a machine's, and it turns the message's clicks around it into machine
    clicks, as a burst of clicks on different links does."""
    rule = "trap-link" if trap else engagement.click_rule(hit or engagement.Hit())
    trap_window = engagement.TRAP_WINDOW.total_seconds()
    with connection.cursor() as cursor:
        cursor.execute(
            _CLICK_CONTEXT_SQL,
            [
                engagement.click_too_soon().total_seconds(),
                engagement.machine_detail("trap-link"),
                trap_window,
                url[:2000],
                engagement.BURST_SECONDS,
                delivery_id,
            ],
        )
        context = cursor.fetchone()
    if context is None:
        return False
    too_soon, trapped, burst = context
    if rule is None:
        rule = "too-soon" if too_soon else "trap" if trapped else "burst" if burst else None
    if rule is None:
        return _engagement_record(
            delivery_id=delivery_id,
            counter="click_count",
            stamps=("clicked_at", "opened_at"),
            from_statuses=_CLICK_FROM,
            status=DeliveryStatus.CLICKED,
            url=url,
        )
    if rule in ("trap-link", "burst"):
        # The clicks just before this one were the same machine's.
        window = trap_window if rule == "trap-link" else engagement.BURST_SECONDS
        delivery_clicks_to_machine(
            delivery_id=delivery_id,
            since_seconds=window,
            detail=engagement.machine_detail("trap" if rule == "trap-link" else rule),
        )
    return _machine_record(
        delivery_id=delivery_id,
        counter="machine_click_count",
        status=DeliveryStatus.CLICKED,
        url=url,
        rule=rule,
    )


def trap_url(delivery_id: int) -> str:
    return f"{_base_url()}/t/h/{token_make(purpose=PURPOSE_TRAP, delivery_id=delivery_id)}"


@dataclass(frozen=True)
class UnsubscribeTarget:
    delivery_id: int
    email: str

    @property
    def masked_email(self) -> str:
        local, _, domain = self.email.partition("@")
        return f"{local[:1]}***@{domain}"

    @property
    def unsubscribed(self) -> bool:
        return Unsubscribed.objects.filter(email=self.email).exists()


def unsubscribe_target(*, delivery_id: int) -> UnsubscribeTarget | None:
    """The email address behind a delivery; None when it is gone or not an email."""
    row = (
        Delivery.objects.filter(pk=delivery_id, channel=ChannelType.EMAIL)
        .values_list("locator", flat=True)
        .first()
    )
    return UnsubscribeTarget(delivery_id=delivery_id, email=row) if row else None


@transaction.atomic
def delivery_unsubscribe(*, delivery_id: int, reason: str) -> UnsubscribeTarget | None:
    """Put the delivery's address on the unsubscribed list (every contact with that address
    stops getting bulk email; other channels stay) and mark the delivery unsubscribed.
    Idempotent: a repeat changes nothing and writes no second history row.
    None when the delivery is gone or was not an email."""
    target = unsubscribe_target(delivery_id=delivery_id)
    if target is None:
        return None
    outcome = unsubscribed_add(emails=[target.email], reason=reason)
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET status = %s WHERE id = %s AND status = ANY(%s) RETURNING id",
            [DeliveryStatus.UNSUBSCRIBED, delivery_id, list(_UNSUBSCRIBE_FROM)],
        )
        moved = cursor.fetchone() is not None
    if moved or outcome["added"]:
        DeliveryEvent.objects.create(
            delivery_id=delivery_id, status=DeliveryStatus.UNSUBSCRIBED, detail=reason[:10_000]
        )
    return target


@transaction.atomic
def delivery_resubscribe(*, delivery_id: int) -> UnsubscribeTarget | None:
    """Undo from the unsubscribe page: take the address off the unsubscribed list. The
    delivery keeps its history (it was unsubscribed at the time)."""
    target = unsubscribe_target(delivery_id=delivery_id)
    if target is None:
        return None
    unsubscribed_remove(emails=[target.email])
    return target
