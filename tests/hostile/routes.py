"""The API's write routes, found by walking the URL resolver (so a new endpoint is covered
without anyone listing it): every pattern under /api/ whose view answers POST, PUT or PATCH.

Each path parameter is filled from a map keyed by the resource the path names just before
it (`campaigns` in campaigns/<campaign_id>/launch, `languages` in languages/<code>), so a
test can point every route at an object that exists and reach the view's reading of the
body; a resource missing from the map gets a value that names nothing ("1")."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver

WRITE_METHODS = ("post", "put", "patch")
_PARAMETER = re.compile(r"\(\?P<(?P<name>\w+)>[^)]*\)|<(?:\w+:)?(?P<plain>\w+)>")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    view: str
    pattern: str = ""

    def at(self, values: dict[str, str]) -> Route:
        """This route with each path parameter named by the resource before it in `values`."""
        return Route(self.method, _path(self.pattern, values), self.view, self.pattern)

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path}"


def _walk(patterns, prefix: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def _path(route: str, values: dict[str, str] | None = None) -> str:
    def value(match: re.Match) -> str:
        resource = route[: match.start()].rstrip("/").rsplit("/", 1)[-1].lstrip("^")
        if values and resource in values:
            return str(values[resource])
        return "en" if match["name"] == "code" else "1"

    path = _PARAMETER.sub(value, route)
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
            routes.append(Route(method, _path(route), view.__name__, route))
    return routes
