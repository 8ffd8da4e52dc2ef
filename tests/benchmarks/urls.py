"""Herald's routes plus `/bench/noop`: the floor a request costs in this stack.

It passes the same middleware as every page and API call but does no work, so the ratio of
an endpoint's throughput to its throughput is what the endpoint itself costs.
"""

from django.http import JsonResponse
from django.urls import path

from config.urls import handler404, handler500
from config.urls import urlpatterns as herald_urlpatterns

__all__ = ["handler404", "handler500", "urlpatterns"]


def noop(request):
    return JsonResponse({"ok": True})


urlpatterns = [path("bench/noop", noop, name="bench-noop"), *herald_urlpatterns]
