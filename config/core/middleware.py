"""Query strings refused when they carry text PostgreSQL cannot store.

Bodies are checked by the API's parsers (config.core.parsers) and the pages' form fields; a
query string reaches a view as Django decoded it, where `%00` becomes the NUL character that
PostgreSQL refuses in a query parameter (a server error wherever a view filters by it). Such
a request is a 400 naming the parameter: JSON on the API, plain text on a page. (A lone
surrogate cannot arrive this way: Django decodes broken UTF-8 to U+FFFD.)
"""

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
