"""campaigns.smtp.sendmail against a real SMTP server, with and without PIPELINING: the same
outcome and the same exceptions as smtplib's sendmail, and a connection that carries the next
message after any refusal."""

import smtplib

import pytest

from campaigns.smtp import sendmail
from tests.support.smtp import SMTPSink

MESSAGE = (
    b"From: news@shop.example\r\nTo: ann@example.com\r\nSubject: Hi\r\n\r\n"
    b"Hello Ann,\r\n.a line that starts with a period\r\n.\r\nlast line"
)


@pytest.fixture(params=[True, False], ids=["pipelining", "one-by-one"])
def server(request):
    with SMTPSink(pipelining=request.param) as sink:
        smtp = smtplib.SMTP("127.0.0.1", sink.port, timeout=10)
        yield sink, smtp
        smtp.close()


def test_a_message_arrives_intact(server, monkeypatch):
    sink, smtp = server
    if sink.pipelining:
        # Pipelined: MAIL, RCPT and DATA in one write, never one at a time.
        monkeypatch.setattr(smtplib.SMTP, "mail", None)
        monkeypatch.setattr(smtplib.SMTP, "rcpt", None)
    assert sendmail(smtp, "news@shop.example", ["ann@example.com"], MESSAGE) == {}
    [received] = sink.received
    assert received.mail_from == "news@shop.example"
    assert received.rcpt_tos == ["ann@example.com"]
    # Leading periods were doubled on the wire and undone by the server.
    assert received.raw.replace(b"\r\n", b"\n") == MESSAGE.replace(b"\r\n", b"\n") + b"\n"


def test_the_envelope_sender_may_carry_a_display_name(server):
    sink, smtp = server
    sendmail(smtp, "Shop <news@shop.example>", ["ann@example.com"], MESSAGE)
    assert sink.received[0].mail_from == "news@shop.example"


@pytest.mark.parametrize("code", [451, 550])
def test_a_refused_recipient_raises_as_smtplib_does_and_the_next_message_goes(server, code):
    sink, smtp = server
    sink.refuse("ghost@example.com", f"{code} 5.1.1 No such user")
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        sendmail(smtp, "news@shop.example", ["ghost@example.com"], MESSAGE)
    assert refused.value.recipients == {"ghost@example.com": (code, b"5.1.1 No such user")}
    sendmail(smtp, "news@shop.example", ["ann@example.com"], MESSAGE)
    assert [r.rcpt_tos for r in sink.received] == [["ann@example.com"]]


def test_some_refused_recipients_are_returned_and_the_others_get_it(server):
    sink, smtp = server
    sink.refuse("ghost@example.com", "550 No such user")
    refused = sendmail(smtp, "news@shop.example", ["ghost@example.com", "ann@example.com"], MESSAGE)
    assert refused == {"ghost@example.com": (550, b"No such user")}
    assert sink.received[0].rcpt_tos == ["ann@example.com"]


@pytest.mark.parametrize(
    ("at", "address", "error"),
    [
        ("MAIL", "news@shop.example", smtplib.SMTPSenderRefused),
        ("DATA", "ann@example.com", smtplib.SMTPDataError),
    ],
)
def test_a_refused_sender_or_message_raises_as_smtplib_does(server, at, address, error):
    sink, smtp = server
    sink.refuse(address, "554 5.7.1 Not accepted", at=at, once=True)
    with pytest.raises(error) as refused:
        sendmail(smtp, "news@shop.example", ["ann@example.com"], MESSAGE)
    assert refused.value.smtp_code == 554
    sendmail(smtp, "news@shop.example", ["ann@example.com"], MESSAGE)
    assert len(sink.received) == 1


def test_a_server_that_closes_with_421_leaves_the_connection_closed(server):
    sink, smtp = server
    sink.refuse("ann@example.com", "421 4.3.2 Shutting down")
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        sendmail(smtp, "news@shop.example", ["ann@example.com"], MESSAGE)
    assert smtp.sock is None


def test_a_closed_connection_raises_server_disconnected(server):
    _, smtp = server
    smtp.ehlo()
    smtp.close()
    with pytest.raises(smtplib.SMTPServerDisconnected):
        sendmail(smtp, "news@shop.example", ["ann@example.com"], MESSAGE)
