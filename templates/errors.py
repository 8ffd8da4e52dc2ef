"""The errors of message templates, all `config.core.errors.HeraldError`s (a marketer's or
an integrator's input, never a bug): the engine's (syntax, render limits), the HTML
sanitiser's, a save's refusals per field, a refused delete and unusable preview input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from config.core.errors import ConflictError, FieldError, HeraldError

if TYPE_CHECKING:
    from templates.models import MessageTemplate


class TemplateError(HeraldError):
    """Base of every error a template can cause; its message is meant for the marketer."""


class TemplateSyntaxError(TemplateError):
    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"line {line}, column {column}: {message}")
        self.message = message
        self.line = line
        self.column = column


class TemplateRenderError(TemplateError):
    """A template failed while rendering (limits exceeded, bad data shape); `field` names
    the part (subject, html, ...) that failed, once known."""

    field: str | None = None


class HtmlSanitizeError(HeraldError):
    """Template HTML the sanitiser refuses: over the work bounds, broken by cleaning, or a
    <style> block that carries script."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(f"line {line}, column {column}: {message}")
        self.message = message
        self.line = line
        self.column = column


@dataclass(frozen=True)
class TemplateFieldError:
    field: str
    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = f" (line {self.line}, column {self.column})" if self.line is not None else ""
        return f"{self.field}: {self.message}{where}"


class TemplateValidationError(HeraldError):
    """The template content breaks a rule; `errors` name the field (and line/column). The
    API and the pages show every error on its field (templates.forms.located)."""

    def __init__(self, errors: list[TemplateFieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(error) for error in errors))


class TemplateInUseError(ConflictError):
    """The template cannot be deleted: messages were sent with one of its versions."""

    def __init__(self, template: MessageTemplate) -> None:
        self.template = template
        super().__init__(
            f"“{template}” cannot be deleted: messages were sent with its published versions, "
            "and the message log keeps what was sent. Rename it instead."
        )


class PreviewInputError(FieldError):
    """The sample contact or the sample data cannot be used; `field` names the input."""
