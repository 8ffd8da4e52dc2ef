"""The SQL pieces the segment filter compiler builds its conditions from: typed reads of one
custom field's JSONB value that never raise on a value of the wrong shape."""

from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, CharField, DecimalField, F, Func, TextField
from django.db.models.sql.compiler import SQLCompiler

# The parameters of a compiled piece of SQL, as Django's compiler passes them on.
SqlParams = tuple[str | int, ...]

NUMERIC_RE = r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$"
ISO_DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"


class _JsonKey(Func):
    """A read of one key of a JSONB column; subclasses say what SQL the key's value becomes
    (`key_sql`, given the compiled column and its parameters)."""

    def __init__(self, column: str, key: str):
        super().__init__(F(column))
        self.key = key

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> tuple[str, SqlParams]:
        col, params = compiler.compile(self.source_expressions[0])
        return self.key_sql(col, tuple(params))

    def key_sql(self, col: str, params: SqlParams) -> tuple[str, SqlParams]:
        raise NotImplementedError


class JsonNumber(_JsonKey):
    """The custom field as numeric, NULL when absent or not a number.

    Values are stored as JSON numbers (contacts.validation), so the `jsonb_typeof` branch is
    the one that runs, and it is cheap; a numeric string written by another path is still
    read, behind a regex so that a stray "n/a" becomes NULL instead of a cast error that
    would fail the whole query.
    """

    output_field = DecimalField()

    def key_sql(self, col: str, params: SqlParams) -> tuple[str, SqlParams]:
        value = f"({col} -> (%s)::text)"
        text = f"({col} ->> (%s)::text)"
        sql = (
            f"(CASE jsonb_typeof({value}) WHEN 'number' THEN ({value})::numeric "
            f"WHEN 'string' THEN CASE WHEN {text} ~ %s THEN ({text})::numeric END END)"
        )
        key = self.key
        return sql, (*params, key, *params, key, *params, key, NUMERIC_RE, *params, key)


class JsonIsoDate(_JsonKey):
    """The custom field's `YYYY-MM-DD` text, NULL when absent or not an ISO date.

    ISO dates order correctly as text; comparing text avoids a ::date cast that an
    impossible stored date (2024-02-31) would turn into a query error.
    """

    output_field = CharField()

    def key_sql(self, col: str, params: SqlParams) -> tuple[str, SqlParams]:
        text = f"({col} ->> (%s)::text)"
        sql = f"(CASE WHEN {text} ~ %s THEN left({text}, 10) END)"
        return sql, (*params, self.key, ISO_DATE_RE, *params, self.key)


class Total(Func):
    """`COALESCE(<predicate>, false)`: NULL (no value) reads as false, so a NOT around the
    predicate matches contacts without a value instead of dropping them as NULL."""

    template = "COALESCE(%(expressions)s, false)"
    output_field = BooleanField()


class JsonKeyText(_JsonKey):
    """`fields ->> '<key>'`. Django's KeyTextTransform turns a digit key into an array index
    (`->> 12`), and custom field ids are digits, so the key is passed as text explicitly."""

    output_field = TextField()

    def key_sql(self, col: str, params: SqlParams) -> tuple[str, SqlParams]:
        return f"({col} ->> (%s)::text)", (*params, self.key)
