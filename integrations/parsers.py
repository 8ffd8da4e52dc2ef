"""Request body parsers: DRF's own, refusing text that PostgreSQL cannot store.

PostgreSQL's text and jsonb refuse the NUL character, so a value carrying one would fail its
INSERT with a server error (or, in a bulk import, fail the whole batch). It is refused here,
once for every endpoint, as a 400 naming the field.
"""

import io
import json

from rest_framework import parsers
from rest_framework.exceptions import ParseError, ValidationError

NUL = "\x00"
NUL_PROBLEM = "must not contain the NUL character (\\u0000)"


def nul_path(data, path: str = "") -> str | None:
    """The dotted path of the first key or string in `data` containing NUL, else None."""
    if isinstance(data, str):
        return path if NUL in data else None
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return None
    for key, value in items:
        here = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and NUL in key:
            return here
        found = nul_path(value, here)
        if found is not None:
            return found
    return None


def nul_refuse(data) -> None:
    path = nul_path(data)
    if path is not None:
        raise ValidationError({path or "body": [NUL_PROBLEM]})


def json_body_load(raw: bytes):
    """A UTF-8 JSON body as DRF's JSONParser reads it (strict: no NaN or Infinity), with no
    NUL anywhere. Raises ParseError for a body that is not JSON, ValidationError for NUL."""
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
        raise ParseError(f"JSON parse error - {exc}") from exc
    # JSON carries NUL only as the escape \u0000: a body without that text has none.
    if b"\\u0000" in raw:
        nul_refuse(data)
    return data


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        encoding = (parser_context or {}).get("encoding", "utf-8")
        if encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
            data = super().parse(io.BytesIO(raw), media_type, parser_context)
            nul_refuse(data)
            return data
        return json_body_load(raw)


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        for key, values in data.lists():
            if NUL in key or any(NUL in value for value in values):
                raise ValidationError({key: [NUL_PROBLEM]})
        return data
