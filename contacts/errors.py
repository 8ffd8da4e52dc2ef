"""The refusals of the contact rules, on the application error base (config.core.errors).

Each class carries its HTTP status and the body the eSputnik v1 API documents for it, so the
API's exception handler answers them without a mapping per view. Errors of one concern that
live beside it: FilterError (contacts.filters.compiler), CsvFormatError (contacts.csv_files),
FetchError (contacts.fetch), ConfirmationError (contacts.optin).
"""

from typing import Any

from config.core.errors import HeraldError
from contacts.validation import FieldProblem, errors_body, errors_reason


class ContactError(HeraldError):
    """A request the contact rules refuse; `errors` name the fields, as (field, problem)."""

    def __init__(self, errors: list[FieldProblem]):
        self.errors = errors
        super().__init__(errors_reason(errors))

    def body(self) -> dict[str, Any]:
        return errors_body(self.errors)


class SubscribeRepeated(ContactError):
    """The same subscribe request within a minute (the eSputnik v1 API answers 409)."""

    status = 409


class ContactConflict(ContactError):
    """The write would break a uniqueness rule (another contact has that externalCustomerId)."""

    status = 409


class DynamicGroupError(ContactError):
    """Contacts are added to static segments only; these group names belong to dynamic ones.

    Refused by the API `before_start` (the body lists the names under `field`, as the
    eSputnik v1 API words it), and by the write itself when a group turned dynamic meanwhile
    (the job's description, or the body of a subscribe)."""

    def __init__(self, field: str, names: list[str], *, before_start: bool = False):
        self.names = names
        self.before_start = before_start
        super().__init__(
            [
                (field, f"'{name}' is a dynamic segment; contacts cannot be added to it")
                for name in names
            ]
        )

    def body(self) -> dict[str, Any]:
        if not self.before_start:
            return super().body()
        field = self.errors[0][0]
        return {field: [f"'{name}' is a dynamic segment" for name in self.names]}


class ContactsRuleError(HeraldError):
    """A segment, custom field or unsubscribed-list request breaks a rule; `field` names what
    is wrong (e.g. `filter.tags.$in`). The API answers 400 `{field: [message]}`."""

    def __init__(self, field: str, message: str):
        super().__init__(message, field=field)

    def body(self) -> dict[str, Any]:
        return {self.field: [self.message]}


class SegmentError(ContactsRuleError):
    pass


class CustomFieldError(ContactsRuleError):
    pass
