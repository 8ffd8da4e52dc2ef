"""Which language a page or an email speaks.

Pages: a signed-in user's own choice (UserPreference, set with the switcher in the top bar)
wins over the browser's Accept-Language; a visitor's choice lives in the `django_language`
cookie, which LocaleMiddleware reads. The API speaks English whatever the client's
Accept-Language: integrators parse its messages, and they are documented in English.

Emails Herald sends on its own (the double opt-in confirmation …) speak the organisation's
language, whoever's request or task sends them:

    with organisation_language():
        body = render_to_string("contacts/emails/confirm_body.txt", context)
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.http import HttpResponse
from django.utils import translation

from config.core.models import Language, Organisation, UserPreference

API_PREFIX = "/api/"


def language_supported(code: str | None) -> bool:
    return code in {code for code, _name in settings.LANGUAGES}


def org_language() -> str:
    """The organisation's language, one of settings.LANGUAGES (English if it names another)."""
    language = Organisation.load().language
    return language if language_supported(language) else Language.EN


@contextmanager
def organisation_language() -> Iterator[str]:
    """Render in the organisation's language inside the block, then restore the caller's."""
    language = org_language()
    with translation.override(language):
        yield language


def user_language(user) -> str:
    """The language a signed-in user chose, or "" (the browser decides)."""
    if not getattr(user, "is_authenticated", False):
        return ""
    preference = UserPreference.objects.filter(user=user).only("language").first()
    language = preference.language if preference else ""
    return language if language_supported(language) else ""


class UserLanguageMiddleware:
    """After AuthenticationMiddleware: a signed-in user's language overrides the one
    LocaleMiddleware took from the cookie or Accept-Language, and the cookie follows it (so
    the login page speaks it too after logging out); the API always speaks English."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        chosen = ""
        if request.path.startswith(API_PREFIX):
            language = Language.EN.value
        else:
            chosen = user_language(getattr(request, "user", None))
            language = chosen or translation.get_language()
        if language != translation.get_language():
            translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()
        response = self.get_response(request)
        if chosen and request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME) != chosen:
            language_cookie_set(response, chosen)
        return response


def language_cookie_set(response: HttpResponse, language: str) -> None:
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )
