"""The shell's own endpoints: the language switcher and the favicon."""

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect
from django.templatetags.static import static
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_POST

from config.core import services
from config.core.i18n import language_cookie_set, language_supported


@require_POST
def language_set(request: HttpRequest) -> HttpResponse:
    """The switcher in the top bar (and on the login page): a signed-in user's choice is kept
    on their account, anyone's in the language cookie; then back to the page they were on."""
    language = request.POST.get("language", "")
    if not language_supported(language):
        return HttpResponseBadRequest(
            gettext("Choose one of the offered languages."),
            content_type="text/plain; charset=utf-8",
        )
    target = request.POST.get("next") or request.META.get("HTTP_REFERER") or "/"
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "/"
    if request.user.is_authenticated:
        services.user_language_set(user=request.user, language=language)
    response = redirect(target)
    language_cookie_set(response, language)
    return response


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever the page says; answer with the SVG icon."""
    return redirect(static("herald/favicon.svg"), permanent=True)
