"""The fast paths in contacts.validation and contacts.channels give exactly what the full
validators give."""

import random

import phonenumbers
import pytest

from contacts import channels, validation
from contacts.csv_files import Header, _setter, row_as_contact
from contacts.custom_fields import custom_fields_load
from tests.contacts.factories import CustomFieldFactory


def _full_phone(value: str) -> str | None:
    """phone_normalise's rule with phonenumbers only: the reference the fast path must match."""
    return channels.phone_e164_full(value.strip())


def _near_valid_numbers(rng: random.Random) -> list[str]:
    """Example numbers of every region and type, and neighbours that differ in the last
    digits or in length: the numbers where a wrong shortcut would show."""
    numbers = []
    kinds = list(phonenumbers.PhoneNumberType.values())
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in kinds:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            digits = e164[1:]
            numbers.append(digits)
            for _ in range(6):
                cut = rng.randint(1, min(4, len(digits) - 1))
                tail = "".join(rng.choice("0123456789") for _ in range(cut))
                numbers.append(digits[:-cut] + tail)
            numbers.extend([digits[:-1], digits + rng.choice("0123456789")])
    for country_code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        for _ in range(30):
            length = rng.randint(1, 16)
            numbers.append(
                str(country_code) + "".join(rng.choice("0123456789") for _ in range(length))
            )
    return numbers


def test_phone_fast_path_agrees_with_phonenumbers_for_every_country():
    rng = random.Random(20261202)
    numbers = _near_valid_numbers(rng)
    accepted = 0
    for digits in numbers:
        for written in (digits, "+" + digits, "00" + digits, f" +{digits} "):
            expected = _full_phone(written)
            got, problem = channels.phone_normalise(written)
            assert got == expected, written
            assert (problem is None) == (expected is not None), written
            accepted += expected is not None
    # The sample must exercise acceptance, not only refusals.
    assert accepted > len(numbers)


@pytest.mark.parametrize(
    "written",
    [
        "+39 06 6982 1234",  # spaces: the full parser's business
        "+390669821234",  # Italian leading zero
        "380501234567",
        "+1 650 253 0000",
        "+16502530000",  # several regions share +1
        "٣٨٠٥٠١٢٣٤٥٦٧",  # non-ASCII digits
        "0501234567",  # national, no country
        "+380 (50) 123-45-67",
        "+44 20 7946 0958 ext. 12",
    ],
)
def test_phone_written_forms_outside_the_fast_path_keep_their_verdict(written):
    expected = _full_phone(written)
    got, _ = channels.phone_normalise(written)
    assert got == expected


# One CSV-like target per kind a file can name, and values meant to sit on every edge of
# contact_parse's rules (lengths, whitespace left by the formula-quote removal, bad formats).
FLAT_CASES = {
    ("firstName", None): ["Ann", "A" * 40, "A" * 41, "\tAnn", "Zoë"],
    ("lastName", None): ["Lee", "L" * 41, "\r"],
    ("address", "address"): ["1 Main St, apt 2", "x" * 255, "x" * 256, "line\nbreak"],
    ("address", "town"): ["Kyiv", "t" * 101],
    ("address", "region"): ["West"],
    ("address", "postcode"): ["01001", "p" * 21],
    ("channel", "email"): [
        "ann@example.com",
        "Bench.Person7@Example.COM",
        "not-an-email",
        "a b@example.com",
        "ünï@example.com",
        "ann@bücher.de",
        "\tann@example.com",
        '"quoted"@example.com',
    ],
    ("channel", "sms"): [
        "380501234567",
        "+380501234567",
        "00380501234567",
        "0501234567",
        "+1 650 253 0000",
        "phone",
        "\t380501234567",
    ],
    ("languageCode", None): ["en", "en-US", "pt_BR", "english!", "x" * 11, "\t"],
    ("timeZone", None): ["Europe/Kyiv", "Mars/Base", "\tEurope/Paris", "europe/kyiv"],
    ("externalCustomerId", None): ["crm-1", "\t", "c" * 255, "c" * 256],
}
FIELD_VALUES = {
    "number": ["12", "1.5", "-3e2", "lots", "NaN", "\t"],
    "date": ["2024-01-02", "2024-02-31", "2024-01-02T10:00:00", "yesterday"],
    "boolean": ["yes", "N", "maybe"],
    "combobox": ["gold", "silver", "Gold"],
    "text": ["teal", "x" * 1000, "x" * 1001],
}


def test_flat_parse_agrees_with_contact_parse_on_every_row(db):
    fields = {
        kind: CustomFieldFactory(
            key=f"F_{kind.upper()}", type=kind, allowed_values=["gold", "silver"]
        )
        for kind in FIELD_VALUES
    }
    custom_fields = custom_fields_load()
    targets = [*FLAT_CASES, *(("field", field.id) for field in fields.values())]
    choices = [*FLAT_CASES.values(), *FIELD_VALUES.values()]
    header = Header(names=[], targets=targets, setters=[_setter(t) for t in targets])
    plan = validation.flat_plan(targets)
    rng = random.Random(7)
    fast = 0
    for _ in range(4000):
        # Mostly valid values with an empty cell or a bad one here and there.
        values = [
            ""
            if rng.random() < 0.15
            else (options[0] if rng.random() < 0.8 else rng.choice(options))
            for options in choices
        ]
        values = [value.strip() for value in values]  # as csv_rows gives them
        expected, errors = validation.contact_parse(
            row_as_contact(header, values), custom_fields=custom_fields
        )
        got = validation.flat_contact_parse(plan, values, custom_fields)
        if errors:
            assert got is None, (values, errors)
        elif got is not None:
            assert got == expected, values
            fast += 1
    assert fast > 300, "the fast path must decide most valid rows"


@pytest.mark.parametrize(
    "value", ["0", "7", "007", "12345678901234567890", "٣", "1.0", "1e3", " 12 ", "-4", "+4"]
)
def test_number_fast_path_gives_what_decimal_gives(value):
    from decimal import Decimal

    field = CustomFieldFactory.build(type="number")
    number = Decimal(value.strip())
    expected = int(number) if number == number.to_integral_value() else float(number)
    result, problem = validation.custom_value_normalise(field, value)
    assert (result, problem) == (expected, None)
    assert type(result) is type(expected)


def test_calling_code_split_is_the_librarys():
    util = phonenumbers.phonenumberutil
    for digits in ["1", "12025550123", "380501234567", "0123", "999", "8", "", "3", "44"]:
        assert channels._split_calling_code(digits) == util._extract_country_code(digits)
    for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        for tail in ("", "0", "12345"):
            digits = f"{code}{tail}"
            assert channels._split_calling_code(digits) == util._extract_country_code(digits)
