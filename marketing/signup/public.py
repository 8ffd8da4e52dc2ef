"""The public pages of a subscription form: /f/<key>/ (hosted), /f/<key>/frame/ (the same form
for an iframe on another site), their thank-you pages, and /f/<key>/embed.js.

No login and no CSRF token: visitors are anonymous and the framed page runs on other sites,
where the browser would not send Herald's CSRF cookie. The traps (honeypot, minimum fill
time, per-address rate limit) stand in for it. Each page speaks the form's language, not the
visitor's browser's."""

import ipaddress
import json
from urllib.parse import urlsplit

from csp.decorators import csp_replace
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.html import escape
from django.utils.translation import gettext_lazy
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt

from campaigns.engagement import hit_from_request
from contacts.errors import ContactError, SubscribeRepeated
from marketing.signup.forms import PublicForm, started_token
from marketing.signup.models import SignupForm
from marketing.signup.services import signup_count, signup_rate_allow, signup_submit

NOT_SUBSCRIBED = gettext_lazy(
    "We could not subscribe you with these details. Check them and try again."
)
# Only the framed pages may be shown inside another site's page (everything else keeps
# frame-ancestors 'none' and X-Frame-Options DENY).
frameable = csp_replace({"frame-ancestors": ["*"]})


def public_url(path: str) -> str:
    """`path` on Herald's public address, as the confirmation and unsubscribe links have it."""
    return f"{settings.HERALD_BASE_URL}{path}"


def _live_form(key: str) -> SignupForm:
    return get_object_or_404(SignupForm.objects.prefetch_related("groups"), key=key, enabled=True)


def _accent_text(colour: str) -> str:
    """Black or white, whichever reads better on the accent colour (WCAG relative luminance)."""
    try:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    except ValueError:
        return "#ffffff"
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return "#000000" if (luminance + 0.05) / 0.05 > 1.05 / (luminance + 0.05) else "#ffffff"


def _context(form: SignupForm, framed: bool, **extra) -> dict:
    return {
        "signup": form,
        "framed": framed,
        "accent_text": _accent_text(form.accent_color),
        "language": form.language,
        **extra,
    }


def _client_ip(request: HttpRequest) -> tuple[str | None, str]:
    """The visitor's address (None when it is not one) and browser, as the tracking
    endpoints read them (X-Forwarded-For only when HERALD_TRUST_X_FORWARDED_FOR is on)."""
    hit = hit_from_request(request)
    try:
        address: str | None = str(ipaddress.ip_address(hit.address))
    except ValueError:
        address = None
    return address, hit.user_agent


def _done(form: SignupForm, framed: bool) -> HttpResponse:
    if form.redirect_url and not framed:
        return HttpResponseRedirect(form.redirect_url)
    name = "signup_frame_thanks" if framed else "signup_thanks"
    return HttpResponseRedirect(reverse(name, args=[form.key]))


def _form_page(request: HttpRequest, key: str, *, framed: bool) -> HttpResponse:
    form = _live_form(key)
    with translation.override(form.language):
        status = 200
        too_fast = False
        if request.method == "POST":
            ip, user_agent = _client_ip(request)
            if not signup_rate_allow(form=form, ip=ip or ""):
                signup_count(form=form, spam=1)
                response = render(
                    request, "marketing/signup/limited.html", _context(form, framed), status=429
                )
                response["Retry-After"] = str(settings.HERALD_SIGNUP_RATE_WINDOW_SECONDS)
                return response
            public = PublicForm(form, request.POST)
            if public.is_spam():
                # Answered like a success, so the robot learns nothing; stored nowhere.
                signup_count(form=form, spam=1)
                return _done(form, framed)
            if public.too_fast():
                signup_count(form=form, spam=1)
                too_fast = True
                public.is_valid()  # show the answers back with their own errors, if any
                status = 400
            elif public.is_valid():
                try:
                    signup_submit(
                        form=form,
                        values=public.answers(),
                        consent_text=form.consent_text if form.consent_enabled else "",
                        ip=ip,
                        user_agent=user_agent,
                    )
                except SubscribeRepeated:
                    # The same answers twice within a minute: the first one counted.
                    return _done(form, framed)
                except ContactError:
                    public.add_error(None, NOT_SUBSCRIBED)
                    status = 400
                else:
                    return _done(form, framed)
            else:
                status = 400
        else:
            signup_count(form=form, views=1)
            public = PublicForm(form)
        response = render(
            request,
            "marketing/signup/page.html",
            _context(
                form,
                framed,
                public=public,
                too_fast=too_fast,
                started=started_token(),
                action=reverse("signup_frame" if framed else "signup_page", args=[form.key]),
            ),
            status=status,
        )
    if form.redirect_url and not framed:
        # Browsers hold a form's redirect to form-action too: allow the form's own target.
        parts = urlsplit(form.redirect_url)
        response._csp_update = {"form-action": [f"{parts.scheme}://{parts.netloc}"]}  # type: ignore[attr-defined]
    return response


@csrf_exempt
def signup_page(request: HttpRequest, key: str) -> HttpResponse:
    return _form_page(request, key, framed=False)


@csrf_exempt
@xframe_options_exempt
@frameable
def signup_frame(request: HttpRequest, key: str) -> HttpResponse:
    return _form_page(request, key, framed=True)


def _thanks(request: HttpRequest, key: str, *, framed: bool) -> HttpResponse:
    form = _live_form(key)
    with translation.override(form.language):
        # In a frame the page itself sends the visitor on (signup_frame.js reads it).
        redirect_after = form.redirect_url if framed else ""
        return render(
            request,
            "marketing/signup/thanks.html",
            _context(form, framed, redirect_after=redirect_after),
        )


def signup_thanks(request: HttpRequest, key: str) -> HttpResponse:
    return _thanks(request, key, framed=False)


@xframe_options_exempt
@frameable
def signup_frame_thanks(request: HttpRequest, key: str) -> HttpResponse:
    return _thanks(request, key, framed=True)


def signup_embed_js(request: HttpRequest, key: str) -> HttpResponse:
    """The script a site includes to show the form: it inserts an iframe of /f/<key>/frame/
    and sizes it to the form as the frame reports its height (postMessage)."""
    form = _live_form(key)
    with translation.override(form.language):
        source = render_to_string(
            "marketing/signup/embed.js",
            {
                "frame_url": json.dumps(public_url(reverse("signup_frame", args=[form.key]))),
                "title": json.dumps(form.name),
            },
        )
    response = HttpResponse(source, content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    return response


def embed_snippets(form: SignupForm) -> dict[str, str]:
    """What a marketer pastes into a site: the script, or a plain iframe."""
    script = public_url(reverse("signup_embed_js", args=[form.key]))
    frame = public_url(reverse("signup_frame", args=[form.key]))
    return {
        "url": public_url(reverse("signup_page", args=[form.key])),
        "script": f'<script src="{script}" async></script>',
        "iframe": (
            f'<iframe src="{frame}" title="{escape(form.name)}" '
            'style="width:100%;max-width:32rem;height:36rem;border:0"></iframe>'
        ),
    }
