"""Email addresses and phone numbers as Herald stores them: lower-cased addresses that
email-validator accepts, and E.164 numbers that phonenumbers holds valid.

Each normaliser answers (value, None) or (None, problem); it runs once per row of a
3000-contact batch, so the common shapes take a fast path (see phone_normalise).

Internationalised addresses are valid and kept: a non-ASCII mailbox (chloé.müller@…) as it
was written, lower-cased; a domain in its Unicode form whichever form arrived
(user@xn--bcher-kva.example is stored as user@bücher.example), so one mailbox is one contact.
The ASCII (punycode) form exists only on the wire: contacts.email_addresses.
"""

import functools
import re
from collections.abc import Callable

import phonenumbers
from email_validator import EmailNotValidError, validate_email

# RFC 5322 dot-atom: the only ASCII local parts email-validator accepts unquoted.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_DOT_ATOM_LOCAL = re.compile(rf"^{_ATEXT}+(?:\.{_ATEXT}+)*$")


@functools.lru_cache(maxsize=8192)
def _email_domain(domain: str) -> str | None:
    """The normalised domain, per email-validator, or None. Cached: domains repeat (gmail.com)
    while addresses do not, and the domain rules are most of email-validator's cost."""
    try:
        return validate_email(f"x@{domain}", check_deliverability=False).domain.lower()
    except EmailNotValidError:
        return None


def email_normalise(value) -> tuple[str | None, str | None]:
    """(normalised address, None) or (None, problem)."""
    if not isinstance(value, str) or not value.strip():
        return None, "must be a non-empty string"
    address = value.strip()
    local, at, domain = address.rpartition("@")
    # Fast path for plain ASCII addresses: the local part is checked here exactly as
    # email-validator would, the domain by email-validator itself (cached).
    if at and len(local) <= 64 and len(address) <= 254 and _DOT_ATOM_LOCAL.match(local):
        normalised_domain = _email_domain(domain) if domain.isascii() else None
        if normalised_domain is not None:
            return f"{local}@{normalised_domain}".lower(), None
    try:
        result = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        return None, f"'{value}' is not a valid email address ({exc})"
    return result.normalized.lower(), None


def _phone_digits_e164(digits: str) -> str | None:
    """The E.164 form of "+<digits>" when it is valid and plainly written, else None (decide
    with the full parser).

    phonenumbers.parse spends most of its time finding a number inside free text (RFC 3966,
    extensions, punctuation, letters); for ASCII digits after "+" all of that is identity,
    and what remains is the library's own country-code split. Numbers whose national part
    starts with 0 (Italian leading zeros) or matches the region's national prefix pattern
    (which parse might strip) are left to the full parser, so an accepted number has exactly
    the country code and national number parse would give, and validity is then the
    library's own check on that number (_national_check). tests/contacts/
    test_validation_fast.py compares both paths over every country code.
    """
    if not 3 <= len(digits) <= _PHONE_MAX_DIGITS or not (digits.isascii() and digits.isdigit()):
        return None
    country_code, national = _split_calling_code(digits)
    if not country_code:
        return None
    key = (country_code, len(national))
    check = _NATIONAL_CHECKS.get(key)
    if check is None:
        check = _NATIONAL_CHECKS[key] = _national_check(*key)
    return "+" + digits if check(national) else None


# parse's own bounds: a national number of 2 to 17 digits after a calling code of up to 3.
_PHONE_MAX_DIGITS = 20


def _calling_code_prefixes() -> dict[str, tuple[int, int]]:
    """Every string of one to three digits that starts with a calling code → (the code, its
    length): phonenumbers' _extract_country_code (the shortest prefix that is a calling code,
    none starting with 0) as one dictionary lookup on a number's first three digits."""
    codes = {str(code): code for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE}
    prefixes = {}
    for length in (1, 2, 3):
        for number in range(10 ** (length - 1), 10**length):
            digits = str(number)
            for size in range(1, length + 1):
                code = codes.get(digits[:size])
                if code is not None:
                    prefixes[digits] = (code, size)
                    break
    return prefixes


_CALLING_CODE_PREFIXES = _calling_code_prefixes()


def _split_calling_code(digits: str) -> tuple[int, str]:
    split = _CALLING_CODE_PREFIXES.get(digits[:3])
    if split is None:
        return 0, digits
    return split[0], digits[split[1] :]


# (calling code, national number length) → the check of a national number of that code and
# length (_national_check), built when first needed.
_NATIONAL_CHECKS: dict[tuple[int, int], Callable[[str], object]] = {}


def _never(national: str) -> bool:
    return False


def _phone_metadata(country_code: int):
    region = phonenumbers.region_code_for_country_code(country_code)
    return phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)


def _national_check(country_code: int, length: int) -> Callable[[str], object]:
    """A check that a national number of `length` digits (after `country_code`) needs no
    more than the split: it does not start with 0 nor match the national prefix for parsing
    (parse might strip either), and phonenumbers.is_valid_number holds for it.

    is_valid_number asks whether the number has a type in its region: it matches the
    general description and then premium rate, toll free, …, fixed line, or mobile (mobile
    only when its pattern differs from fixed line's), each a length check and a full match.
    For a calling code of a single region all of that is one regular expression, built for
    this length: a type whose possible lengths exclude it is left out, so no length is
    checked per number, and one pass of the regex engine replaces a dozen Python-level
    calls. Elsewhere (+1, +7, +44: several regions) the library decides."""
    metadata = _phone_metadata(country_code)
    if metadata is None or not 2 <= length <= 17:
        return _never
    prefix = metadata.national_prefix_for_parsing
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())
    if len(regions) == 1 and not (prefix and _GROUP_REFERENCE.search(prefix)):
        try:
            general = _phone_desc_regex(metadata.general_desc, length)
            kinds = [_phone_desc_regex(getattr(metadata, name), length) for name in _TYPE_DESCS]
            if not metadata.same_mobile_and_fixed_line_pattern:
                kinds.append(_phone_desc_regex(metadata.mobile, length))
        except ValueError:
            pass
        else:
            patterns = [kind for kind in kinds if kind is not None]
            if general is not None and patterns:
                refused = f"(?!0)(?!{prefix})" if prefix else "(?!0)"
                return re.compile(f"{refused}(?={general})(?:{'|'.join(patterns)})").match
    prefix_match = re.compile(prefix).match if prefix else _never

    def library_check(national: str) -> bool:
        if national[0] == "0" or prefix_match(national):
            return False
        number = phonenumbers.PhoneNumber(country_code=country_code, national_number=int(national))
        return phonenumbers.is_valid_number(number)

    return library_check


# A named group or a back reference could change meaning once patterns are combined.
_GROUP_REFERENCE = re.compile(r"\\(?!d)|\(\?P")

# is_valid_number's number types, in its order (mobile is added when it differs from fixed
# line).
_TYPE_DESCS = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
)


def _phone_desc_regex(desc, length: int) -> str | None:
    """A desc as the library matches a national number of `length` digits against it: None
    when it cannot match (no pattern, or the length is not among its possible lengths), else
    its pattern, anchored at the end. Raises ValueError for a pattern unsafe to combine."""
    if desc is None or not desc.national_number_pattern:
        return None
    # An empty list allows every length; -1 alone marks "no number of this type".
    if desc.possible_length and length not in desc.possible_length:
        return None
    pattern = desc.national_number_pattern
    if _GROUP_REFERENCE.search(pattern):
        raise ValueError("leave this region to the library")
    return f"(?:{pattern})\\Z"


def phone_normalise(value) -> tuple[str | None, str | None]:
    """(E.164 number, None) or (None, problem). The eSputnik v1 API sends "380942583691"
    without "+"."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        return None, "must be a non-empty string"
    raw = value.strip()
    # The common case, decided without the free-text parser; the first candidate below.
    fast = _phone_digits_e164(raw[2:] if raw.startswith("00") else raw.removeprefix("+"))
    if fast is not None:
        return fast, None
    full = phone_e164_full(raw)
    if full is not None:
        return full, None
    return None, f"'{value}' is not a valid phone number (international format, e.g. +380942583691)"


def phone_e164_full(raw: str) -> str | None:
    """The E.164 form of a stripped phone text by phonenumbers' free-text parser alone, or None
    (the reference the fast path agrees with)."""
    # A national number without "+" (e.g. 0501234567) names no country: refused, not guessed.
    candidates = [raw] if raw.startswith("+") else ["+" + raw]
    if raw.startswith("00"):
        candidates.insert(0, "+" + raw[2:])
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, None)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None
