"""Bounded whole-number query parameters (paging and the like), read and documented from one
definition: the check a view makes and the OpenAPI schema's minimum/maximum never drift.

A value out of its range is refused with a 400 naming the parameter and the range, rather than
silently capped: a client that asked for 5 000 rows should learn it gets at most 500.
"""

import re
from dataclasses import dataclass

from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import ValidationError

# The largest value a PostgreSQL bigint holds: every primary key is one, and so is an OFFSET.
ID_MAX = 2**63 - 1
# Positions and offsets stop here: a page past any table Herald can hold is empty anyway, and
# every client's 32-bit integer can carry the bound.
POSITION_MAX = 2**31 - 1
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": ID_MAX}

# ASCII digits only: int() would also take "1_000", " 7", "٣" and other Unicode digits.
_WHOLE = re.compile(r"[+-]?[0-9]{1,20}")


@dataclass(frozen=True)
class IntParam:
    name: str
    default: int
    minimum: int
    maximum: int
    description: str = ""

    @property
    def problem(self) -> str:
        return f"must be a whole number from {self.minimum} to {self.maximum}"

    def read(self, params, errors: dict) -> int:
        """The value from a query dict (the default when absent or empty); a problem is added
        to `errors` under the parameter's name."""
        raw = params.get(self.name)
        if raw is None or raw == "":
            return self.default
        if not _WHOLE.fullmatch(raw) or not self.minimum <= int(raw) <= self.maximum:
            shown = raw if len(raw) <= 40 else raw[:40] + "…"
            errors[self.name] = [f"{self.problem}, got '{shown}'"]
            return self.default
        return int(raw)

    @property
    def schema(self) -> dict:
        return {
            "type": "integer",
            "minimum": self.minimum,
            "maximum": self.maximum,
            "default": self.default,
        }

    def openapi(self) -> OpenApiParameter:
        return OpenApiParameter(self.name, self.schema, description=self.description)


def read_all(params, *specs: IntParam) -> list[int]:
    """Each parameter's value, or one 400 naming every parameter that is wrong."""
    errors: dict = {}
    values = [spec.read(params, errors) for spec in specs]
    if errors:
        raise ValidationError(errors)
    return values
