"""Public endpoints reached from inside emails (open pixel, click redirect, unsubscribe):
no login, the signed token is the credential. Thin wrappers around campaigns.tracking."""

import base64
from urllib.parse import urlsplit

from django.http import (
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotFound,
    HttpResponseRedirect,
)
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from campaigns import tracking
from campaigns.engagement import hit_from_request

# A 1x1 GIF whose only pixel is the transparent colour (GIF89a, 42 bytes).
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _no_cache(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-cache, no-store, must-revalidate, private, max-age=0"
    response["Pragma"] = "no-cache"
    response["Expires"] = "0"
    return response


def _private_page(response: HttpResponse) -> HttpResponse:
    # The token in the URL is the recipient's credential: keep it out of referrers, caches
    # and search engines.
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return _no_cache(response)


@require_http_methods(["GET", "HEAD"])
def open_pixel(request, token: str):
    delivery_id = tracking.token_check(purpose=tracking.PURPOSE_OPEN, token=token)
    if delivery_id is None:
        return HttpResponseNotFound("Unknown tracking link.", content_type="text/plain")
    # HEAD requests and prefetches count too, as machine opens (campaigns.engagement).
    tracking.delivery_open_record(delivery_id=delivery_id, hit=hit_from_request(request))
    return _no_cache(HttpResponse(PIXEL_GIF, content_type="image/gif"))


@require_http_methods(["GET", "HEAD"])
def click_redirect(request, token: str):
    url = request.GET.get("u", "")
    delivery_id = tracking.token_check(purpose=tracking.PURPOSE_CLICK, token=token, extra=url)
    # The signature covers the URL: only a link that was in the message redirects.
    if delivery_id is None or urlsplit(url).scheme.lower() not in ("http", "https"):
        return HttpResponseBadRequest(
            "This link is damaged or was not issued by us, so it does not redirect.",
            content_type="text/plain",
        )
    tracking.delivery_click_record(delivery_id=delivery_id, url=url, hit=hit_from_request(request))
    return _no_cache(HttpResponseRedirect(url))


@require_http_methods(["GET", "HEAD"])
def trap_link(request, token: str):
    """The hidden link of every tracked email (campaigns.engagement): only machines follow it,
    and the message's clicks around it are theirs."""
    delivery_id = tracking.token_check(purpose=tracking.PURPOSE_TRAP, token=token)
    if delivery_id is None:
        return HttpResponseNotFound("Unknown tracking link.", content_type="text/plain")
    tracking.delivery_click_record(
        delivery_id=delivery_id, url="", hit=hit_from_request(request), trap=True
    )
    return _private_page(HttpResponse("", content_type="text/plain"))


# No CSRF check: RFC 8058 one-click POSTs come from mailbox providers without cookies, and
# the page's own form must work for a recipient who has no session. The signed token in the
# URL is what authorises the change.
@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request, token: str):
    delivery_id = tracking.token_check(purpose=tracking.PURPOSE_UNSUBSCRIBE, token=token)
    target = None if delivery_id is None else tracking.unsubscribe_target(delivery_id=delivery_id)
    if target is None:
        response = render(request, "campaigns/unsubscribe_invalid.html", status=404)
        return _private_page(response)

    if request.method == "POST":
        if request.POST.get("List-Unsubscribe") == "One-Click":
            tracking.delivery_unsubscribe(
                delivery_id=delivery_id, reason="one-click unsubscribe (RFC 8058)"
            )
            return _private_page(HttpResponse("Unsubscribed.", content_type="text/plain"))
        if request.POST.get("action") == "resubscribe":
            tracking.delivery_resubscribe(delivery_id=delivery_id)
            state = "resubscribed"
        else:
            tracking.delivery_unsubscribe(delivery_id=delivery_id, reason="unsubscribe page")
            state = "unsubscribed"
    else:
        # Showing the page never unsubscribes: link scanners follow every GET.
        state = "unsubscribed" if target.unsubscribed else "confirm"
    context = {"state": state, "masked_email": target.masked_email}
    return _private_page(render(request, "campaigns/unsubscribe.html", context))
