"""The API's write routes, found by walking the URL resolver (so a new endpoint is covered
without anyone listing it): every pattern under /api/ whose view answers POST, PUT or PATCH."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver

WRITE_METHODS = ("post", "put", "patch")
# A value for every path parameter: matches the id patterns and names nothing that exists.
_PARAMETER = re.compile(r"\(\?P<(?P<name>\w+)>[^)]*\)|<(?:\w+:)?(?P<plain>\w+)>")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    view: str

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path}"


def _walk(patterns, prefix: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def _path(route: str) -> str:
    path = _PARAMETER.sub(lambda m: "en" if m["name"] == "code" else "1", route)
    path = path.replace("^", "").replace("/?$", "").replace("$", "")
    return "/" + path


def _methods(callback) -> list[str]:
    actions = getattr(callback, "actions", None)
    if actions:  # a viewset: its router says which methods this route maps
        return [m for m in actions if m in WRITE_METHODS]
    view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    return [m for m in WRITE_METHODS if view is not None and hasattr(view, m)]


def api_write_routes() -> list[Route]:
    routes = []
    for route, callback in _walk(get_resolver().url_patterns):
        if not route.startswith("api/"):
            continue
        view = getattr(callback, "cls", callback)
        for method in _methods(callback):
            routes.append(Route(method, _path(route), view.__name__))
    return routes
