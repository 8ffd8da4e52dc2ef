"""The fast paths in contacts.validation give exactly what the full validators give."""

import random

import phonenumbers
import pytest

from contacts import validation


def _full_phone(value: str) -> str | None:
    """phone_normalise's rule with phonenumbers only: the reference the fast path must match."""
    raw = value.strip()
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
            got, problem = validation.phone_normalise(written)
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
    got, _ = validation.phone_normalise(written)
    assert got == expected
