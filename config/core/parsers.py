"""Request body parsers (JSON, form, multipart): DRF's own, refusing text PostgreSQL cannot
store and JSON that would exhaust the stack; and request_body, how an API view reads the
parsed body.

PostgreSQL's text and jsonb refuse the NUL character and lone UTF-16 surrogates (`"\\ud800"`
is valid JSON, but no UTF-8 text can hold it), so a value carrying one would fail its INSERT
with a server error (or, in a bulk import, fail the whole batch). They are refused here, once
for every endpoint, as a 400 naming the field. JSON nested deeper than MAX_JSON_DEPTH levels
is refused as well, before anything walks it.
"""

import io
import json
import re
import shutil
import tempfile
from collections.abc import Collection, Iterable
from itertools import accumulate
from typing import Any
from urllib.parse import unquote_to_bytes

from django.conf import settings
from django.http import QueryDict
from django.http.multipartparser import (  # type: ignore[attr-defined]  # exhaust: not in the stubs
    FIELD,
    ChunkIter,
    LazyStream,
    MultiPartParserError,
    exhaust,
)
from django.http.multipartparser import Parser as DjangoMultipartReader
from django.utils.http import parse_header_parameters
from rest_framework import parsers
from rest_framework.exceptions import ParseError, ValidationError

NUL = "\x00"
NUL_PROBLEM = "must not contain the NUL character (\\u0000)"
SURROGATE_PROBLEM = "must not contain a lone UTF-16 surrogate (\\ud800 to \\udfff)"
INVALID_UTF8_PROBLEM = "is not valid UTF-8 text"
_SURROGATE = re.compile("[\ud800-\udfff]")
MULTIPART_CHUNK = 64 * 1024

# Real request bodies nest a handful of levels (params, channels, items); this leaves room.
MAX_JSON_DEPTH = 100
DEPTH_PROBLEM = f"nested deeper than {MAX_JSON_DEPTH} levels"

# The byte of each JSON bracket → its step in depth; other bytes are deleted before counting.
_DEPTH_STEP = [0] * 256
for _byte in b"[{":
    _DEPTH_STEP[_byte] = 1
for _byte in b"]}":
    _DEPTH_STEP[_byte] = -1
_NOT_BRACKET = bytes(b for b in range(256) if not _DEPTH_STEP[b])

# A lone surrogate's escape in JSON text (a high one not followed by a low one, or a low one
# not after a high one): only to point at it in a message.
_LONE_SURROGATE_ESCAPE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def text_problem(text: str) -> str | None:
    """Why PostgreSQL cannot store `text`, else None."""
    if NUL in text:
        return NUL_PROBLEM
    if _SURROGATE.search(text):
        return SURROGATE_PROBLEM
    return None


def text_problem_path(data, path: str = "") -> tuple[str, str] | None:
    """(dotted path, problem) of the first key or string in `data` PostgreSQL cannot store."""
    if isinstance(data, str):
        problem = text_problem(data)
        return (path, problem) if problem else None
    items: Iterable[tuple[Any, Any]]
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return None
    for key, value in items:
        # A path names the field as it can be shown: U+FFFD for what cannot be.
        shown = text_storable(key) if isinstance(key, str) else key
        here = f"{path}.{shown}" if path else str(shown)
        if isinstance(key, str) and (problem := text_problem(key)):
            return here, problem
        found = text_problem_path(value, here)
        if found is not None:
            return found
    return None


def text_refuse(data) -> None:
    found = text_problem_path(data)
    if found is not None:
        path, problem = found
        raise ValidationError({path or "body": [problem]})


def text_storable(data):
    """`data` with U+FFFD in place of each NUL and lone surrogate, in keys and strings."""
    if isinstance(data, str):
        return _SURROGATE.sub("\ufffd", data.replace(NUL, "\ufffd"))
    if isinstance(data, dict):
        return {text_storable(key): text_storable(value) for key, value in data.items()}
    if isinstance(data, list):
        return [text_storable(value) for value in data]
    return data


def text_suspect(raw: bytes | str) -> bool:
    """Whether JSON text may hold NUL or a lone surrogate: JSON carries them only as escapes
    (\\u0000, \\udXXX), and UTF-8 text cannot hold them raw. Cheap (a substring search), so
    the walk of text_problem_path runs only for the rare body that has such an escape."""
    if isinstance(raw, str):
        return "\\u0000" in raw or "\\ud" in raw or "\\uD" in raw or NUL in raw
    return b"\\u0000" in raw or b"\\ud" in raw or b"\\uD" in raw


def json_depth_over(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text `raw` nests arrays and objects deeper than `limit`.

    Counted on the text, with the strings taken out (they may hold brackets), in C-speed
    byte operations; a body with no more than `limit` brackets cannot be that deep."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    # Without escaped backslashes and quotes, every '"' opens or closes a string.
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside_strings = b"".join(unescaped.split(b'"')[::2])
    brackets = outside_strings.translate(None, _NOT_BRACKET)
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0) > limit


def _loads(text: str | bytes):
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError(DEPTH_PROBLEM) from None


def json_body_load(raw: bytes, *, check_text: bool = True, check_depth: bool = True):
    """A UTF-8 JSON body as DRF's JSONParser reads it (strict: no NaN or Infinity), with no
    NUL or lone surrogate anywhere (unless `check_text` is off: the caller checks parts of
    it itself) and at most MAX_JSON_DEPTH levels deep. Raises ParseError for a body that is
    not JSON or too deep, ValidationError naming the field for text PostgreSQL cannot store.

    `check_depth` off: only JSON too deep to parse at all is refused (the bulk contacts
    endpoint, whose rows are shape-checked, skips counting a megabyte of brackets)."""
    if check_depth and json_depth_over(raw):
        raise ParseError(f"JSON parse error - {DEPTH_PROBLEM}")
    try:
        data = _loads(raw.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError, JSONDecodeError and depth included
        raise ParseError(f"JSON parse error - {exc}") from exc
    if check_text and text_suspect(raw):
        text_refuse(data)
    return data


def json_text_load(text: str):
    """JSON typed into a page (a filter, sample data, parameters): as json.loads, but text
    PostgreSQL cannot store and nesting past MAX_JSON_DEPTH raise json.JSONDecodeError too, so
    a form shows them as it shows any other JSON error."""
    if json_depth_over(text.encode("utf-8", "surrogatepass")):
        raise json.JSONDecodeError(DEPTH_PROBLEM, text, 0)
    try:
        value = _loads(text)
    except json.JSONDecodeError:
        raise
    except ValueError as exc:
        raise json.JSONDecodeError(str(exc), text, 0) from None
    if text_suspect(text):
        found = text_problem_path(value)
        if found is not None:
            path, problem = found
            where = _LONE_SURROGATE_ESCAPE.search(text) if problem == SURROGATE_PROBLEM else None
            position = where.start() if where else max(text.find("\\u0000"), 0)
            raise json.JSONDecodeError(
                f"{path or 'the value'} {problem}, which cannot be stored", text, position
            )
    return value


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        encoding = (parser_context or {}).get("encoding", "utf-8")
        if encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
            try:
                data = super().parse(io.BytesIO(raw), media_type, parser_context)
            except RecursionError:
                raise ParseError(f"JSON parse error - {DEPTH_PROBLEM}") from None
            text_refuse(data)
            return data
        return json_body_load(raw)


def _fields_refuse(fields, file_names=()) -> None:
    """Form fields (a QueryDict) and uploaded files' field names: the first that PostgreSQL
    cannot store is a 400 naming it."""
    for key, values in fields.lists():
        for text in (key, *values):
            if problem := text_problem(text):
                raise ValidationError({text_storable(key): [problem]})
    for key in file_names:
        if problem := text_problem(key):
            raise ValidationError({text_storable(key): [problem]})


def form_utf8_refuse(raw: bytes) -> None:
    """Refuse a form body whose bytes, raw or percent-escaped, are not UTF-8: Django decodes
    them with U+FFFD in place of each bad byte, which would store a name other than the one
    sent without a word. The 400 names the first field holding such bytes."""
    try:
        # The common case at C speed: a bad sequence cut by "&" or "=" stays bad here too.
        unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
        return
    except UnicodeDecodeError:
        pass
    for pair in raw.split(b"&"):
        key, _, value = pair.partition(b"=")
        for part in (key, value):
            try:
                unquote_to_bytes(part.replace(b"+", b" ")).decode("utf-8")
            except UnicodeDecodeError:
                name = unquote_to_bytes(key.replace(b"+", b" ")).decode("utf-8", "replace")
                raise ValidationError({name or "body": [INVALID_UTF8_PROBLEM]}) from None


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        encoding = (parser_context or {}).get("encoding", "utf-8")
        if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
            form_utf8_refuse(raw)
        data = super().parse(io.BytesIO(raw), media_type, parser_context)
        _fields_refuse(data)
        return data


def multipart_utf8_refuse(body, boundary: bytes) -> None:
    """Refuse a multipart body a field of which (its value, not an uploaded file's content)
    is not UTF-8: Django decodes it with U+FFFD in place of each bad byte, as it does a form
    body. Walks the parts with Django's own multipart reader, so they split as it splits
    them. A part whose headers are not UTF-8 is dropped by Django's reader, so never stored."""
    parts = DjangoMultipartReader(LazyStream(ChunkIter(body, MULTIPART_CHUNK)), boundary)
    for item_type, headers, part in parts:
        if item_type != FIELD:
            exhaust(part)
            continue
        value = part.read()
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            name = headers.get("content-disposition", ("", {}))[1].get("name", b"")
            shown = name.decode("utf-8", "replace") if isinstance(name, bytes) else name
            raise ValidationError({shown or "body": [INVALID_UTF8_PROBLEM]}) from None


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", "utf-8")
        boundary = parse_header_parameters(media_type or "")[1].get("boundary", "")
        utf8 = encoding.lower().replace("_", "-") in ("utf-8", "utf8")
        if stream is None or not boundary or not utf8:
            return self._parse_checked(stream, media_type, parser_context)
        # Read twice (checked, then parsed): kept in memory up to the body limit, on disk
        # past it (a large upload). Django's parser has read all of it when it returns.
        with tempfile.SpooledTemporaryFile(settings.DATA_UPLOAD_MAX_MEMORY_SIZE) as body:
            shutil.copyfileobj(stream, body)
            body.seek(0)
            try:
                multipart_utf8_refuse(body, boundary.encode("ascii", "replace"))
            except MultiPartParserError as exc:
                raise ParseError(f"Multipart form parse error - {exc}") from exc
            body.seek(0)
            return self._parse_checked(body, media_type, parser_context)

    def _parse_checked(self, stream, media_type, parser_context):
        parsed = super().parse(stream, media_type, parser_context)
        _fields_refuse(parsed.data, parsed.files)
        return parsed


def request_body_refuse_malformed(request) -> None:
    """Parse the body of a write whose view takes none (lift, publish, launch, purge…): DRF
    parses only when a view reads `request.data`, so a body that is not JSON, nests too deep
    or is not UTF-8 would be ignored and the action done anyway; this refuses it (400) first.
    An empty body parses to nothing and passes."""
    request.data  # noqa: B018 -- read for its parsing, which raises ParseError/ValidationError


def request_body(
    request,
    *,
    lists: Collection[str] = (),
    comma_lists: Collection[str] = (),
    object_only: bool = True,
) -> Any:
    """A request's body as the API views read it: JSON as parsed (an object, unless not
    `object_only`: then whatever JSON value was sent); a form-encoded or multipart body as a
    dict of one value per key, where each key in `lists` gives the list of its repeated
    values, empty ones left out (`groupNames=a&groupNames=b`), and each key in `comma_lists`
    the same with comma-separated values split too (`channels=email,sms`).

    A body that is not an object, where one is required, is a 400 saying so."""
    data = request.data
    if isinstance(data, QueryDict):
        body: dict[str, Any] = {key: data.get(key) for key in data}
        for key in lists:
            if key in data:
                body[key] = [value for value in data.getlist(key) if value != ""]
        for key in comma_lists:
            if key in data:
                body[key] = [
                    part.strip()
                    for value in data.getlist(key)
                    for part in value.split(",")
                    if part.strip()
                ]
        return body
    if object_only and not isinstance(data, dict):
        raise ValidationError({"non_field_errors": ["the body must be a JSON object"]})
    return data
