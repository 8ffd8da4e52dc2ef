"""The block editor's side of templates: starter layouts, saving a design, uploaded images.

A design is an MJML document (with the editor's project data beside it, to reopen it as it
was left). Saving compiles the MJML on the server with mrml (the Rust MJML implementation)
and hands the HTML to the ordinary template save (templates.services.template_update), so a
block-built template is sanitised, gets its text part and is later sent, tracked and given
its unsubscribe link and headers exactly like one written in the HTML editor.

Decisions:
- mrml resolves no <mj-include> (a no-op loader: a design must not read server files or
  fetch URLs) and emits no web-font <link>/@import (the sanitiser refuses @import, and most
  mail clients ignore web fonts); a design names its fonts with fallbacks.
- Velocity is left alone by mrml: `$!contact.firstName` in text and in attributes passes
  through, and `#if`/`#end` around a section are written in <mj-raw> blocks. The editor
  writes `&`, `<`, `>` and `'` of text as entities (and mrml needs `<` that way); inside a
  directive's parentheses (`#if($a && $b)`, `#if($n < 5)`) they are turned back in the
  compiled HTML, or the engine would read `&amp;&amp;`. The sanitiser's handling of
  Velocity then takes over, as for HTML written by hand.
- A design that fails (mrml's parse error, or a rule of the HTML save) changes nothing: the
  last good design and HTML stay, and the error names the problem.
"""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mrml
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.templatetags.static import static
from django.urls import reverse

from config.core.errors import FieldError
from contacts.models import ChannelType
from templates.errors import TemplateFieldError, TemplateValidationError
from templates.models import EditorImage, EditorKind, MessageTemplate
from templates.sanitize import MAX_HTML_CHARS
from templates.services import template_update

STARTERS_DIR = Path(__file__).resolve().parent / "starters"
# Replaced by the absolute URL of Herald's static files when a starter layout is opened.
STATIC_PLACEHOLDER = "%STATIC_URL%"
# The MJML of a design is bounded like template HTML; the compiled HTML is larger still and
# meets the HTML save's own bounds.
MAX_MJML_CHARS = MAX_HTML_CHARS
MAX_IMAGE_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class StarterLayout:
    key: str
    name: str
    description: str


STARTER_LAYOUTS = (
    StarterLayout(
        "newsletter", "Newsletter", "A header, a main story with a picture, two short stories."
    ),
    StarterLayout("promotion", "Promotion", "A sale banner with a button and two products."),
    StarterLayout("announcement", "Announcement", "One plain message, like a letter."),
)


class DesignCompileError(FieldError):
    """The MJML document cannot be compiled; the message is mrml's."""

    def __init__(self, message: str) -> None:
        super().__init__("mjml", message)


def starter_layout_mjml(*, key: str) -> str:
    """The MJML of a starter layout, its image URLs made absolute (mail is read elsewhere)."""
    if key not in {layout.key for layout in STARTER_LAYOUTS}:
        raise FieldError("starter", f"No starter layout “{key}”.")
    source = (STARTERS_DIR / f"{key}.mjml").read_text(encoding="utf-8")
    return source.replace(STATIC_PLACEHOLDER, _absolute(static("")))


def _absolute(path: str) -> str:
    if path.startswith(("http://", "https://")):
        return path
    return settings.HERALD_BASE_URL.rstrip("/") + "/" + path.lstrip("/")


# A Velocity directive with its parenthesised arguments (no nesting deeper than one level:
# `#if($a.get('x') && $b)`), where entities written by the editor are turned back.
_DIRECTIVE = re.compile(r"#\{?(?:if|elseif|foreach|set)\}?\s*\((?:[^()]|\([^()]*\))*\)")


# Only these: a `"` turned back inside an attribute value would end the attribute.
_DIRECTIVE_ENTITIES = re.compile(r"&(?:amp|lt|gt|apos|#0*39|#x0*27);", re.IGNORECASE)


def _unescape_directives(html: str) -> str:
    return _DIRECTIVE.sub(
        lambda match: _DIRECTIVE_ENTITIES.sub(
            lambda entity: html_lib.unescape(entity.group(0).lower()), match.group(0)
        ),
        html,
    )


def design_compile(*, mjml: str) -> str:
    """Responsive HTML from an MJML document; raises DesignCompileError naming the problem."""
    if not mjml.strip():
        raise DesignCompileError("The design is empty.")
    if len(mjml) > MAX_MJML_CHARS:
        raise DesignCompileError(f"The design is over {MAX_MJML_CHARS:,} characters.")
    if "<mjml" not in mjml:
        raise DesignCompileError("An MJML document starts with <mjml>.")
    try:
        output = mrml.to_html(
            mjml,
            parser_options=mrml.ParserOptions(include_loader=mrml.noop_loader()),
            render_options=mrml.RenderOptions(fonts={}, disable_comments=True),
        )
    except OSError as exc:  # mrml's parse errors
        raise DesignCompileError(f"The MJML cannot be compiled: {exc}.") from None
    return _unescape_directives(str(output.content))


@transaction.atomic
def template_design_save(
    *, template: MessageTemplate, mjml: str, project: dict[str, Any] | None = None
) -> MessageTemplate:
    """Compile the design and save it with its HTML as the template's draft. Nothing is
    written when it fails: DesignCompileError, or TemplateValidationError whose errors
    name `mjml` (the compiled HTML broke a rule of the HTML save)."""
    compiled_html = design_compile(mjml=mjml)
    # A fresh, locked copy: a refused save must not leave the caller's instance half-changed,
    # and two saves of one design must not interleave.
    locked = MessageTemplate.objects.select_for_update().get(pk=template.pk)
    if locked.channel != ChannelType.EMAIL:
        raise FieldError("channel", "Only email templates have a block design.")
    locked.editor = EditorKind.BLOCKS
    locked.design_mjml = mjml
    locked.design_project = project or {}
    try:
        template_update(template=locked, html=compiled_html)
    except TemplateValidationError as exc:
        raise TemplateValidationError(
            [
                TemplateFieldError(
                    "mjml",
                    f"the compiled HTML {error.field}: {error.message}"
                    if error.field != "html"
                    else f"the compiled HTML: {error.message}",
                )
                for error in exc.errors
            ]
        ) from None
    for field in ("editor", "design_mjml", "design_project", "html", "text", "text_generated"):
        setattr(template, field, getattr(locked, field))
    template.updated_at = locked.updated_at
    return template


# First bytes of each accepted image type (the upload's own Content-Type is not trusted).
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def _sniff(head: bytes) -> str | None:
    for signature, content_type in _SIGNATURES:
        if head.startswith(signature):
            return content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def editor_image_check(*, upload: UploadedFile) -> str:
    """The content type of an acceptable image (PNG, JPEG, GIF or WebP by its first bytes,
    at most 5 MB); raises FieldError("file", ...) otherwise."""
    size = upload.size or 0
    if size == 0:
        raise FieldError("file", "The file is empty.")
    if size > MAX_IMAGE_BYTES:
        raise FieldError(
            "file", f"The image is {size:,} bytes; at most {MAX_IMAGE_BYTES:,} (5 MB) are allowed."
        )
    upload.seek(0)
    content_type = _sniff(upload.read(16))
    upload.seek(0)
    if content_type is None:
        raise FieldError("file", "Not a PNG, JPEG, GIF or WebP image.")
    return content_type


@transaction.atomic
def editor_image_create(*, upload: UploadedFile, user: Any = None) -> EditorImage:
    """Store an image for use in designs (editor_image_check's rules)."""
    content_type = editor_image_check(upload=upload)
    size = upload.size or 0
    image = EditorImage(
        name=(upload.name or "image")[:255],
        content_type=content_type,
        size=size,
        uploaded_by=user if getattr(user, "is_authenticated", False) else None,
    )
    image.file.save(f"upload{image.extension}", upload, save=False)
    image.save()
    return image


def editor_image_url(image: EditorImage) -> str:
    """The absolute public URL of an image: mail clients fetch it without logging in."""
    return _absolute(reverse("editor_image", args=[image.key, image.extension.lstrip(".")]))
