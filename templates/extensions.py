"""Top-level template names that a higher layer provides (`$promo`, from the promo code
pools of campaigns), registered at start-up. The templates layer knows nothing of what they
mean; it asks each extension to check a template at publish and preview time, and to give
sample values for previews.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from templates.errors import TemplateFieldError


@dataclass(frozen=True)
class TemplateExtension:
    # The top-level name templates use ("promo" for `$!promo.KEY`).
    name: str
    # (field → source) → problems, each naming the field; [] when the template is fine.
    check: Callable[[Mapping[str, str]], list[TemplateFieldError]]
    # (field → source) → the value of `$<name>` in a preview.
    sample: Callable[[Mapping[str, str]], Any]


EXTENSIONS: dict[str, TemplateExtension] = {}

# The fields of a template or version that hold Velocity source.
SOURCE_FIELDS = ("subject", "preheader", "html", "text", "sms_text")


def extension_register(extension: TemplateExtension) -> None:
    EXTENSIONS[extension.name] = extension


def _sources(template: Any) -> dict[str, str]:
    return {field: getattr(template, field, "") or "" for field in SOURCE_FIELDS}


def extensions_check(template: Any) -> list[TemplateFieldError]:
    """What the registered extensions find wrong with a template (or version, or unsaved
    template) before it is published or previewed."""
    sources = _sources(template)
    return [error for ext in EXTENSIONS.values() for error in ext.check(sources)]


def extensions_sample(template: Any) -> dict[str, Any]:
    """`extra` for template_render in a preview: each extension's sample values."""
    sources = _sources(template)
    return {name: ext.sample(sources) for name, ext in EXTENSIONS.items()}
