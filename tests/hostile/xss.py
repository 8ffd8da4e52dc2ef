"""Stored cross-site scripting: one payload, stored through Herald's own ways in (the API,
services, admin's models) in every text a person can store that a page shows, and the
checks that find it live in a page.

The payload closes an attribute and a textarea, opens a tag with an event handler, a script,
a javascript: URL and a template expression; escaped, none of it is markup."""

from __future__ import annotations

import re
from html.parser import HTMLParser

# `window.__xss` is what the browser test looks for: set only if a payload ran.
PAYLOAD = (
    '"\'></textarea></title><img src=x onerror="window.__xss=1">'
    "<script>window.__xss=1</script>{{7*7}}${7*7}"
)
# For names limited to 40 characters.
SHORT_TAG = '"><img src=x onerror=window.__xss=1>'
SHORT_SCRIPT = '"><script>window.__xss=1</script>'
JS_URL = "javascript:window.__xss=1//"
MARK = "window.__xss"


class LiveMarkup(HTMLParser):
    """Finds the payload as markup: a tag whose attributes or script body hold MARK, or a
    link or source whose URL is a javascript: one."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._script: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            value = value or ""
            if MARK in value and (name.startswith("on") or name in ("src", "href")):
                self.found.append(f"<{tag} {name}={value!r}>")
            if name in ("href", "src", "action", "formaction", "data") and re.match(
                r"\s*javascript:", value, re.IGNORECASE
            ):
                self.found.append(f"<{tag} {name}={value!r}>")
        if tag == "script":
            kind = dict(attrs).get("type") or ""
            self._script = None if "json" in kind else []

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            body = "".join(self._script)
            if MARK in body:
                self.found.append(f"<script>{body[:80]}")
            self._script = None

    def handle_data(self, data):
        if self._script is not None:
            self._script.append(data)


def live_markup(html: str) -> list[str]:
    parser = LiveMarkup()
    parser.feed(html)
    parser.close()
    return parser.found
