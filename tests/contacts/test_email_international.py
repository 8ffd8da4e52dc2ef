"""Contact entry keeps internationalised addresses (they are valid) in one stored form: the
mailbox as written, lower-cased, the domain in Unicode whichever form arrived."""

import pytest

from contacts.channels import email_normalise
from contacts.email_addresses import envelope_address, mailbox_ascii_domain


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("chloé.müller36@example.com", "chloé.müller36@example.com"),
        ("Chloé.Müller36@Example.COM", "chloé.müller36@example.com"),
        ("user@bücher.example", "user@bücher.example"),
        ("user@BÜCHER.example", "user@bücher.example"),
        ("user@xn--bcher-kva.example", "user@bücher.example"),
    ],
)
def test_internationalised_addresses_are_accepted_in_one_form(given, stored):
    assert email_normalise(given) == (stored, None)


def test_the_wire_form_has_the_domain_in_punycode_and_the_mailbox_unchanged():
    assert mailbox_ascii_domain("user@bücher.example") == "user@xn--bcher-kva.example"
    assert mailbox_ascii_domain("chloé@bücher.example") == "chloé@xn--bcher-kva.example"
    assert mailbox_ascii_domain("ann@example.com") == "ann@example.com"
    assert envelope_address("Chloé <chloé@bücher.example>") == "chloé@xn--bcher-kva.example"
