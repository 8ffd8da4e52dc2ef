"""Query strings refused when they carry text PostgreSQL cannot store.

Bodies are checked by the API's parsers (config.core.parsers) and the pages' form fields; a
query string reaches a view as Django decoded it, where `%00` becomes the NUL character that
PostgreSQL refuses in a query parameter (a server error wherever a view filters by it). Such
a request is a 400 naming the parameter: JSON on the API, plain text on a page. (A lone
surrogate cannot arrive this way: Django decodes broken UTF-8 to U+FFFD.)
"""

import ipaddress

from auditlog.middleware import AuditlogMiddleware
from django.conf import settings
from django.http import HttpResponseBadRequest, JsonResponse

from config.core.parsers import text_problem, text_storable

API_PREFIX = "/api/"


class QueryTextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "%00" in request.META.get("QUERY_STRING", ""):
            for key, values in request.GET.lists():
                for text in (key, *values):
                    if problem := text_problem(text):
                        return _refusal(request, text_storable(key), problem)
        return self.get_response(request)


def _refusal(request, name: str, problem: str):
    if request.path.startswith(API_PREFIX):
        return JsonResponse({name: [problem]}, status=400)
    return HttpResponseBadRequest(
        f"The query parameter {name} {problem}.", content_type="text/plain; charset=utf-8"
    )


class AuditAddressMiddleware(AuditlogMiddleware):
    """django-auditlog's middleware, with the address it records read as Herald reads it.

    The stock one stores the first X-Forwarded-For entry, which any client can set: a value
    that is not an address made every audited write a server error (the column is inet).
    Here the address is REMOTE_ADDR, or the last X-Forwarded-For entry (the one our own
    reverse proxy appended) when HERALD_TRUST_X_FORWARDED_FOR is on; anything that is not an
    IP address is recorded as unknown.
    """

    @staticmethod
    def _get_remote_addr(request):
        if settings.AUDITLOG_DISABLE_REMOTE_ADDR:
            return None
        address = request.META.get("REMOTE_ADDR") or ""
        if settings.HERALD_TRUST_X_FORWARDED_FOR:
            forwarded = request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
            address = forwarded or address
        try:
            return str(ipaddress.ip_address(address))
        except ValueError:
            return None
