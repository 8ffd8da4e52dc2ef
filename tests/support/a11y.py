"""Accessibility and small-screen checks for browser tests: axe-core (npm) and sideways scroll.

    from tests.support.a11y import assert_accessible, assert_fits_phone

    assert_accessible(page)             # no serious or critical axe finding, "needs review" too
    assert_fits_phone(page, "/contacts/")  # at 390 px the page does not scroll sideways

axe-core comes from the npm registry (package.json, devDependencies) and is evaluated in the
page through the DevTools protocol, which the pages' Content-Security-Policy does not govern.
"""

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    from playwright.sync_api import Page

AXE_PATH = Path(settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.1 A and AA plus axe's best practices (landmarks, headings, skip links …).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
BLOCKING = {"serious", "critical"}
PHONE = {"width": 390, "height": 844}

_axe_source: str | None = None


def _axe() -> str:
    global _axe_source
    if _axe_source is None:
        if not AXE_PATH.exists():
            raise AssertionError(f"axe-core is missing at {AXE_PATH}: run bin/bootstrap (npm ci).")
        _axe_source = AXE_PATH.read_text()
    return _axe_source


def axe_findings(page: "Page") -> list[dict[str, Any]]:
    """Serious and critical findings of axe on the page as it is now, violations and the
    "needs review" (incomplete) items alike, each with its rule, impact and first targets."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(_axe())
    result = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags},"
        " resultTypes: ['violations', 'incomplete']})",
        AXE_TAGS,
    )
    findings = []
    for kind in ("violations", "incomplete"):
        for rule in result[kind]:
            nodes = [node for node in rule["nodes"] if node.get("impact") in BLOCKING]
            if rule.get("impact") in BLOCKING and nodes:
                findings.append(
                    {
                        "kind": kind,
                        "rule": rule["id"],
                        "impact": rule["impact"],
                        "help": rule["help"],
                        "targets": [node["target"] for node in nodes[:5]],
                        "summary": nodes[0].get("failureSummary", ""),
                    }
                )
    return findings


def assert_accessible(page: "Page", where: str = "") -> None:
    findings = axe_findings(page)
    assert not findings, f"axe on {where or page.url}:\n" + json.dumps(findings, indent=1)


def sideways_overflow(page: "Page") -> int:
    """How many CSS pixels the document is wider than the viewport (0 when it fits)."""
    return page.evaluate(
        "() => Math.max(0, document.documentElement.scrollWidth - window.innerWidth)"
    )


def assert_fits_phone(page: "Page", path: str) -> None:
    """Open `path` at 390 by 844 px and check that nothing makes the page scroll sideways."""
    size = page.viewport_size
    page.set_viewport_size(PHONE)
    try:
        response = page.goto(path)
        assert response is not None and response.ok, f"GET {path} answered {response}"
        page.wait_for_load_state("networkidle")
        overflow = sideways_overflow(page)
        assert overflow == 0, (
            f"{path} scrolls sideways by {overflow}px at 390px wide; widest elements: "
            + json.dumps(_widest(page))
        )
    finally:
        if size:
            page.set_viewport_size(size)


def _widest(page: "Page") -> list[str]:
    return page.evaluate(
        """() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
            .slice(-5)
            .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                 + (e.className && typeof e.className === 'string' ? '.' + e.className : '')
                 + ' right=' + Math.round(e.getBoundingClientRect().right))"""
    )
