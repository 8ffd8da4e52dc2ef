"""The one base of the errors Herald's rules raise, and how every edge shows them.

A rule (a service, a query compiler, the delivery engine) raises a `HeraldError` subclass
when a caller's input or a requested action is refused. The edges do not map error classes
one by one: the API's exception handler (config.core.api_errors) answers any `HeraldError`
with its `status` and `body()`, and pages put `form_error()` on the form field it names or
show its message. An error that is not a `HeraldError` is a bug and answers 500.

Subclasses set `status` (400 by default; 404 not found, 409 conflict with the current
state) and may override `body()` when an API's documented error shape differs from the
default `{"detail": ..., "field": ...}`.
"""

from typing import Any


class HeraldError(Exception):
    status: int = 400

    def __init__(self, message: str = "", *, field: str = "") -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field and message else message or field)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"detail": str(self)}
        if self.field:
            body["field"] = self.field
        return body


class FieldError(HeraldError):
    """One named input is wrong: (field, message), the shape most rules raise."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)


class ConflictError(HeraldError):
    """The action conflicts with the current state (a status machine refusal, a duplicate)."""

    status = 409


def form_error(form, exc: HeraldError, *, field: str | None = None) -> None:
    """Show a rule's refusal on a page's form: on the field it names (or `field`, when the
    page names its inputs otherwise) if the form has that field, else as a form-wide error."""
    name = exc.field if field is None else field
    form.add_error(name if name in form.fields else None, exc.message or str(exc))
