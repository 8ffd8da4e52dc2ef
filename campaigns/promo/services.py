"""Promo code pools: create, change, delete; add codes from a file or a list, generate codes;
issue a code to a contact (a workflow step); what a campaign handed out.

Decisions:
- An upload either stores every valid code or, when any line is invalid (too long, a control
  character), nothing: the 400 names each bad line. Duplicates are not errors: a code seen
  earlier in the file or already in the pool is reported with its line and skipped, the rest
  is stored, in one INSERT … ON CONFLICT DO NOTHING.
- Generated codes come from `secrets` (a promo code is worth money: it must not be
  guessable from another one), over an alphabet without look-alikes (no 0/O, 1/I/L); they
  are inserted the same way, and the few that collide are drawn again.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q, QuerySet

from campaigns.models import Campaign
from campaigns.promo.models import (
    CODE_MAX_LENGTH,
    POOL_KEY_PATTERN,
    CodeSource,
    PromoCode,
    PromoPool,
)
from config.core.errors import ConflictError, FieldError

# Codes per upload or generation: a pool of a million codes is plenty for one call, and
# parsing a larger file would hold the request too long.
MAX_CODES_PER_CALL = 1_000_000
# Rows per INSERT statement: bounds the statement's parameter arrays.
INSERT_CHUNK = 50_000
GENERATE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
GENERATE_LENGTH_MIN, GENERATE_LENGTH_MAX = 4, 32
PREFIX_MAX = 20
# Generation refuses when the codes would fill more than this share of the space of codes
# (collisions would make drawing slow, and codes easy to guess).
GENERATE_SPACE_SHARE = 0.01
POOL_KEY = re.compile(rf"\A{POOL_KEY_PATTERN}\Z")


class PromoCodesInvalid(FieldError):
    """Lines of an upload that cannot be codes; nothing was stored."""

    def __init__(self, field: str, problems: list[tuple[int, str]]) -> None:
        self.problems = problems
        shown = "; ".join(f"line {line}: {problem}" for line, problem in problems[:20])
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        super().__init__(field, f"{shown}{more}. Nothing was stored.")

    def body(self) -> dict[str, Any]:
        body = super().body()
        body["lines"] = [{"line": line, "problem": problem} for line, problem in self.problems]
        return body


@dataclass
class CodesAdded:
    added: int = 0
    # (line, code, why): "repeats line 3" or "already in the pool".
    duplicates: list[tuple[int, str, str]] = field(default_factory=list)


# --- pools ---------------------------------------------------------------------------------


def _key_check(key: str) -> None:
    if not POOL_KEY.match(key):
        raise FieldError(
            "key",
            "Use a letter, then letters, digits or _ (at most 50): templates name it as "
            "$!promo.KEY.",
        )


@transaction.atomic
def promo_pool_create(
    *, name: str, key: str, description: str = "", expires_at: datetime | None = None
) -> PromoPool:
    name = name.strip()
    if not name:
        raise FieldError("name", "A pool needs a name.")
    _key_check(key)
    if PromoPool.objects.filter(key__iexact=key).exists():
        raise FieldError("key", f"A pool with the key {key} exists already.")
    try:
        with transaction.atomic():
            return PromoPool.objects.create(
                name=name, key=key, description=description, expires_at=expires_at
            )
    except IntegrityError:
        raise FieldError("key", f"A pool with the key {key} exists already.") from None


@transaction.atomic
def promo_pool_update(*, pool: PromoPool, **changes: Any) -> PromoPool:
    """Change name, key, description or expiry. The key of a pool that handed out codes
    stays: published templates name it."""
    allowed = {"name", "key", "description", "expires_at"}
    unknown = set(changes) - allowed
    if unknown:
        raise FieldError(sorted(unknown)[0], "This field cannot be changed.")
    if "name" in changes:
        changes["name"] = changes["name"].strip()
        if not changes["name"]:
            raise FieldError("name", "A pool needs a name.")
    if "key" in changes and changes["key"] != pool.key:
        _key_check(changes["key"])
        if PromoPool.objects.filter(key__iexact=changes["key"]).exclude(pk=pool.pk).exists():
            raise FieldError("key", f"A pool with the key {changes['key']} exists already.")
        if pool.codes.filter(assigned_at__isnull=False).exists():
            raise FieldError("key", "The pool has handed out codes: its key cannot change.")
    for name, value in changes.items():
        setattr(pool, name, value)
    pool.save()
    return pool


@transaction.atomic
def promo_pool_delete(*, pool: PromoPool) -> None:
    """Delete a pool and its codes, unless it handed out codes (the report shows them)."""
    if pool.codes.filter(assigned_at__isnull=False).exists():
        raise ConflictError("The pool has handed out codes; it cannot be deleted.")
    pool.delete()


def promo_pools_counted() -> QuerySet[PromoPool]:
    """Pools with `free` and `assigned` counts."""
    return PromoPool.objects.annotate(
        free=Count("codes", filter=Q(codes__assigned_at__isnull=True)),
        assigned=Count("codes", filter=Q(codes__assigned_at__isnull=False)),
    )


# --- adding codes --------------------------------------------------------------------------


def code_problem(code: str) -> str:
    """Why `code` cannot be a promo code, or ''."""
    if len(code) > CODE_MAX_LENGTH:
        return f"the code is longer than {CODE_MAX_LENGTH} characters"
    if any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") for char in code):
        return "the code contains a control character"
    return ""


def codes_from_file(content: bytes) -> list[tuple[int, str]]:
    """(line, code) of a CSV file: one code per line, or a column named `code` (any case);
    UTF-8 with or without a byte order mark; blank lines skipped."""
    if not content.strip():
        raise FieldError("file", "The file is empty.")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FieldError("file", f"The file is not UTF-8 (byte {exc.start + 1}).") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, str]] = []
    column = 0
    try:
        for number, row in enumerate(reader):
            if number == 0:
                names = [name.strip().lower() for name in row]
                if "code" in names:
                    column = names.index("code")
                    continue
            value = row[column].strip() if len(row) > column else ""
            if value:
                rows.append((reader.line_num, value))
            if len(rows) > MAX_CODES_PER_CALL:
                raise FieldError("file", f"At most {MAX_CODES_PER_CALL} codes per file.")
    except csv.Error as exc:
        raise FieldError("file", f"Line {reader.line_num}: {exc}.") from None
    if not rows:
        raise FieldError("file", "The file holds no codes.")
    return rows


def _insert(pool: PromoPool, codes: list[str], source: str) -> set[str]:
    """Insert codes not yet in the pool; return the ones inserted."""
    inserted: set[str] = set()
    table = PromoCode._meta.db_table
    with connection.cursor() as cursor:
        for start in range(0, len(codes), INSERT_CHUNK):
            cursor.execute(
                f"""INSERT INTO {table} (pool_id, code, source, created_at)
                    SELECT %s, code, %s, now() FROM unnest(%s::text[]) AS c(code)
                    ON CONFLICT (pool_id, code) DO NOTHING RETURNING code""",  # noqa: S608
                [pool.pk, source, codes[start : start + INSERT_CHUNK]],
            )
            inserted.update(row[0] for row in cursor.fetchall())
    return inserted


@transaction.atomic
def promo_codes_add(
    *, pool: PromoPool, lines: Iterable[tuple[int, str]], field_name: str = "file"
) -> CodesAdded:
    """Add (line, code) pairs to the pool as uploaded codes. Invalid codes: nothing is stored
    (PromoCodesInvalid lists them by line); duplicates are reported, the rest stored."""
    problems: list[tuple[int, str]] = []
    first_line: dict[str, int] = {}
    result = CodesAdded()
    for line, code in lines:
        problem = code_problem(code)
        if problem:
            problems.append((line, problem))
        elif code in first_line:
            result.duplicates.append((line, code, f"repeats line {first_line[code]}"))
        else:
            first_line[code] = line
    if problems:
        raise PromoCodesInvalid(field_name, problems)
    if not first_line:
        raise FieldError(field_name, "No codes given.")
    inserted = _insert(pool, list(first_line), CodeSource.UPLOADED)
    result.added = len(inserted)
    result.duplicates.extend(
        (line, code, "already in the pool")
        for code, line in first_line.items()
        if code not in inserted
    )
    result.duplicates.sort()
    return result


def promo_codes_upload(*, pool: PromoPool, content: bytes) -> CodesAdded:
    return promo_codes_add(pool=pool, lines=codes_from_file(content))


def generate_check(*, count: int, length: int, prefix: str) -> None:
    if not 1 <= count <= MAX_CODES_PER_CALL:
        raise FieldError("count", f"Give a number from 1 to {MAX_CODES_PER_CALL}.")
    if not GENERATE_LENGTH_MIN <= length <= GENERATE_LENGTH_MAX:
        raise FieldError(
            "length", f"Give a length from {GENERATE_LENGTH_MIN} to {GENERATE_LENGTH_MAX}."
        )
    if len(prefix) > PREFIX_MAX:
        raise FieldError("prefix", f"At most {PREFIX_MAX} characters.")
    if code_problem(prefix) or any(char.isspace() for char in prefix):
        raise FieldError("prefix", "No spaces or control characters.")
    if count > len(GENERATE_ALPHABET) ** length * GENERATE_SPACE_SHARE:
        raise FieldError(
            "length", f"Too short for {count} codes that cannot be guessed: use a longer one."
        )


@transaction.atomic
def promo_codes_generate(*, pool: PromoPool, count: int, length: int = 8, prefix: str = "") -> int:
    """Generate `count` new unique codes (prefix + `length` characters); returns count."""
    generate_check(count=count, length=length, prefix=prefix)
    # Lock the pool: concurrent generations would each draw, then collide on each other.
    PromoPool.objects.select_for_update().filter(pk=pool.pk).first()
    added = 0
    for _round in range(10):
        wanted = count - added
        if not wanted:
            break
        codes = {
            prefix + "".join(secrets.choice(GENERATE_ALPHABET) for _ in range(length))
            for _ in range(wanted)
        }
        added += len(_insert(pool, list(codes), CodeSource.GENERATED))
    return added


# --- issuing and reporting -----------------------------------------------------------------


def promo_code_issue(
    *, pool: PromoPool, contact_id: int, workflow_run_id: int | None
) -> str | None:
    """Give a free code of the pool to a contact (a workflow step); None when the pool has
    none left. A later message's `$!promo.KEY` shows the contact's newest such code. A run
    gets one code per pool: asked again (the step repeated after a crash), it answers the
    code it gave."""
    table = PromoCode._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH given AS (
                    SELECT code FROM {table}
                     WHERE contact_id = %(contact)s AND pool_id = %(pool)s
                       AND workflow_run_id = %(run)s LIMIT 1
                ), taken AS (
                    UPDATE {table} c
                       SET contact_id = %(contact)s, workflow_run_id = %(run)s,
                           assigned_at = now()
                     WHERE NOT EXISTS (SELECT 1 FROM given)
                       AND c.id = (SELECT id FROM {table}
                                    WHERE pool_id = %(pool)s AND assigned_at IS NULL
                                    ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
                 RETURNING c.code)
                SELECT code FROM given UNION ALL SELECT code FROM taken""",  # noqa: S608
            {"contact": contact_id, "run": workflow_run_id, "pool": pool.pk},
        )
        row = cursor.fetchone()
    return row[0] if row else None


def promo_codes_of_campaign(campaign: Campaign) -> QuerySet[PromoCode]:
    """The codes the campaign's messages carried, with pool, contact and send time."""
    return (
        PromoCode.objects.filter(delivery__run__campaign=campaign)
        .select_related("pool", "contact", "delivery")
        .order_by("delivery__sent_at", "pk")
    )


# Codes listed on the campaign report page (the CSV export has them all).
REPORT_CODES_SHOWN = 20


def promo_codes_report(campaign: Campaign) -> dict[str, Any]:
    """For the campaign report: codes handed out per pool, and the latest few."""
    codes = promo_codes_of_campaign(campaign)
    per_pool = list(
        PromoCode.objects.filter(delivery__run__campaign=campaign)
        .values("pool__key")
        .annotate(count=Count("id"))
        .order_by("pool__key")
    )
    return {
        "count": sum(row["count"] for row in per_pool),
        "pools": per_pool,
        "latest": list(codes.order_by("-assigned_at", "-pk")[:REPORT_CODES_SHOWN]),
    }
