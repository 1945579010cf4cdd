"""One message: headers, refusal of unsafe values, DKIM coverage of the unsubscribe headers."""

from __future__ import annotations

import email
from email import policy

import dkim
import pytest

from pressroom.errors import MailError
from pressroom.mail.message import build_message
from pressroom.mail.settings import DkimSettings
from pressroom.mail.smtp import classify, wire_payload

BASE = dict(sender="newsletter@juvenology.co.uk", sender_name="Nurse Marina", to="ann@example.com",
            subject="Hello", text="Hi Ann", html="<p>Hi Ann</p>", list_id="news.juvenology.co.uk",
            unsubscribe_https="https://www.juvenology.co.uk/unsubscribe?t=" + "A" * 55,
            unsubscribe_mailto="unsubscribe@juvenology.co.uk")


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=policy.default)


@pytest.mark.parametrize("field, value, message", [
    ("subject", "Hello\r\nBcc: all@example.com", "the subject contains a line break (CR or LF)"),
    ("subject", "Hello\nthere", "the subject contains a line break (CR or LF)"),
    ("to_name", "Ann\rBcc: x", "the recipient name contains a line break (CR or LF)"),
    ("sender_name", "Nurse\nMarina", "the sender name contains a line break (CR or LF)"),
    ("to", "a@b@c", "'a@b@c' is not a valid email address: it must contain exactly one '@'"),
    ("to", "ann@example.com\nBcc: x@example.com",
     "is not a valid email address: it contains a space, line break or control character"),
    ("reply_to", "no-at-sign", "'no-at-sign' is not a valid email address"),
])
def test_unsafe_values_are_refused(field, value, message):
    with pytest.raises(MailError) as caught:
        build_message(**{**BASE, field: value})
    assert message in caught.value.message


def test_long_unicode_subject_and_unsubscribe_url_survive_intact():
    subject = "Facial yoga: week 1 — the cheek lift, the brow smoother and the jaw release — part 2"
    msg = parse(build_message(**{**BASE, "subject": subject}).data)
    assert msg["Subject"] == subject
    assert msg["List-Unsubscribe"] == (f"<{BASE['unsubscribe_https']}>, "
                                       "<mailto:unsubscribe@juvenology.co.uk?subject=unsubscribe>")
    assert msg.get_payload()[1].get("MIME-Version") is None


def test_dkim_covers_the_unsubscribe_headers(dkim_key):
    key_file, record = dkim_key
    settings = DkimSettings("juvenology.co.uk", "news", key_file, key_file.read_bytes())
    data = build_message(**BASE, dkim_settings=settings).data

    def dns(name, timeout=5):
        return record

    assert dkim.verify(data, dnsfunc=dns)
    tampered = data.replace(b"unsubscribe?t=AAAA", b"unsubscribe?t=BBBB", 1)
    assert tampered != data and not dkim.verify(tampered, dnsfunc=dns)
    dropped = data.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", b"", 1)
    assert dropped != data and not dkim.verify(dropped, dnsfunc=dns)


def test_wire_payload_stuffs_dots_and_terminates():
    assert wire_payload(b"a\n.b\r\n..c") == b"a\r\n..b\r\n...c\r\n.\r\n"


@pytest.mark.parametrize("code, reply, stage, kind", [
    (451, "4.7.1 greylisted", "RCPT", "retry"),
    (421, "4.3.2 closing", "END", "retry"),
    (550, "5.1.1 no such user", "RCPT", "rejected"),
    (550, "no such user", "RCPT", "rejected"),
    (554, "5.7.1 relay access denied", "RCPT", "pause"),
    (554, "5.7.1 spam", "END", "pause"),
    (552, "5.6.0 content rejected", "END", "pause"),
    (550, "5.1.1 unknown user (checked late)", "END", "rejected"),
    (554, "transaction failed", "END", "pause"),
    (553, "5.1.8 sender rejected", "MAIL", "pause"),
])
def test_reply_classification(code, reply, stage, kind):
    assert classify(code, reply.encode(), stage).kind == kind


def test_prepared_bodies_decode_to_the_personalised_template():
    import email

    from pressroom.mail.message import MessageTemplate
    from pressroom.mergefields import (FIRST_NAME, UNSUBSCRIBE_URL, VIEW_URL, personalise_html,
                                 personalise_text, values)

    line = "x" * 70
    # Lines of 70-80 columns, each ending in a character that takes 3 (=C3=A9, =3D) or 1 column,
    # or a space that must be encoded at the end of a line: every way past the 76-column edge.
    edges = "\n".join(f"{'w' * n}{end}" for n in range(70, 81) for end in ("é", "=", "a ", "ab"))
    html = (f"<p>{line} Hi {FIRST_NAME},</p>\n<p>{'y' * 300}{FIRST_NAME}{'z' * 5}</p>"
            f'<a href="{UNSUBSCRIBE_URL}">Unsubscribe</a> . <a href="{VIEW_URL}">View</a> \n'
            f"{edges}")
    text = (f"Hi {FIRST_NAME},\n.leading dot\nUnsubscribe: {UNSUBSCRIBE_URL}\ntrailing space \n"
            f"{edges}\n")
    template = MessageTemplate(sender="newsletter@juvenology.co.uk", sender_name="Nurse Marina",
                               subject="Hello", text=text, html=html)
    fields = dict(first_name='Zoë "<b>" O\'Neil & co', fallback="there",
                  unsubscribe_url="https://www.juvenology.co.uk/unsubscribe?t=" + "A" * 150,
                  view_url="https://www.juvenology.co.uk/newsletters/01.html")
    data = template.build(to="ann@example.com", values=values(**fields)).data
    lengths = [len(raw) for raw in data.split(b"\r\n")]
    # Soft breaks fill lines up to the edge (RFC 2045: at most 76), never past it.
    assert 74 <= max(lengths) <= 76
    msg = email.message_from_bytes(data, policy=email.policy.default)
    def decoded(kind: str) -> str:  # MIME text is CRLF on the wire; compare as \n text
        return msg.get_body((kind,)).get_content().replace("\r\n", "\n").rstrip("\n")

    assert decoded("html") == personalise_html(html, **fields)
    assert decoded("plain") == personalise_text(text, **fields).rstrip("\n")
