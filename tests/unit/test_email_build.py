import base64
import datetime as dt
import email
import email.policy

import pytest

from lib.adapters.email_build import build_mime, to_raw_base64url
from lib.errors import InvalidInputError
from lib.ports import OutboundEmail

NOW = dt.datetime(2025, 5, 30, 2, 15, tzinfo=dt.timezone.utc)


def make_email(**changes) -> OutboundEmail:
    fields = dict(
        outbox_id="ob-001",
        sender="xiaoming.wang@example.com",
        sender_name="王小明",
        to=("\"Lin, Mei\" <mei.lin@example.com>", "daming.wang@example.com"),
        subject="關於網站改版的提案與報價單，請參考附件並回覆您方便的會議時間",
        text_body="林小姐您好，\n附上提案，謝謝。\n",
        message_id="<outbound-7f3a2c@crm.example.com>",
    )
    fields.update(changes)
    return OutboundEmail(**fields)


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_build_mime_round_trips_cjk_headers():
    raw = build_mime(make_email(), now=NOW).as_bytes()
    parsed = parse(raw)

    assert raw.isascii()
    assert parsed["From"].addresses[0].display_name == "王小明"
    assert parsed["From"].addresses[0].addr_spec == "xiaoming.wang@example.com"
    assert str(parsed["Subject"]) == make_email().subject
    assert parsed["Message-ID"] == "<outbound-7f3a2c@crm.example.com>"
    assert parsed["Date"].datetime == NOW


def test_build_mime_keeps_quoted_recipient_with_comma():
    parsed = parse(build_mime(make_email(), now=NOW).as_bytes())

    addresses = parsed["To"].addresses
    assert [a.addr_spec for a in addresses] == ["mei.lin@example.com", "daming.wang@example.com"]
    assert addresses[0].display_name == "Lin, Mei"


def test_build_mime_folds_long_subject_lines():
    raw = build_mime(make_email(subject="報價" * 60), now=NOW).as_bytes()

    assert max(len(line) for line in raw.split(b"\r\n")) <= 78
    assert str(parse(raw)["Subject"]) == "報價" * 60


def test_build_mime_plain_text_only():
    parsed = parse(build_mime(make_email(), now=NOW).as_bytes())

    assert parsed.get_content_type() == "text/plain"
    assert parsed.get_content_charset() == "utf-8"
    # Base64 bodies carry the canonical CRLF line endings of text/* parts.
    assert parsed.get_content() == "林小姐您好，\r\n附上提案，謝謝。\r\n"


def test_build_mime_html_alternative():
    parsed = parse(build_mime(make_email(html_body="<p>林小姐您好</p>"), now=NOW).as_bytes())

    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert parts[1].get_content() == "<p>林小姐您好</p>\r\n"
    assert parsed.get_body(preferencelist=("plain",)).get_content().startswith("林小姐您好")


def test_build_mime_reply_headers():
    parsed = parse(build_mime(make_email(in_reply_to="<CAF3x9Pq2mReply01@mail.example.com>"), now=NOW).as_bytes())

    assert parsed["In-Reply-To"] == "<CAF3x9Pq2mReply01@mail.example.com>"
    assert parsed["References"] == "<CAF3x9Pq2mReply01@mail.example.com>"


def test_build_mime_omits_reply_headers_for_new_thread():
    parsed = parse(build_mime(make_email(), now=NOW).as_bytes())

    assert "In-Reply-To" not in parsed
    assert "References" not in parsed


def test_build_mime_extra_headers():
    headers = (("List-Unsubscribe", "<mailto:unsubscribe@crm.example.com>"), ("X-Crm-Outbox", "ob-001"))
    parsed = parse(build_mime(make_email(headers=headers), now=NOW).as_bytes())

    assert parsed["List-Unsubscribe"] == "<mailto:unsubscribe@crm.example.com>"
    assert parsed["X-Crm-Outbox"] == "ob-001"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"to": ()}, "to"),
        ({"to": ("not-an-address",)}, "to[0]"),
        ({"to": ("a@example.com, b@example.com",)}, "to[0]"),
        ({"sender": "nobody"}, "sender"),
        ({"message_id": "outbound-7f3a2c@crm.example.com"}, "message_id"),
        ({"message_id": "<no-domain>"}, "message_id"),
        ({"in_reply_to": "<bad id@x>"}, "in_reply_to"),
        ({"subject": "Hi\r\nBcc: victim@example.com"}, "subject"),
        ({"headers": (("X-Note", "a\nBcc: victim@example.com"),)}, "headers.X-Note"),
        ({"headers": (("message-id", "<other@example.com>"),)}, "headers.message-id"),
    ],
)
def test_build_mime_rejects_invalid_fields(changes, field):
    with pytest.raises(InvalidInputError) as info:
        build_mime(make_email(**changes), now=NOW)

    assert info.value.field == field


def test_build_mime_rejects_naive_date():
    with pytest.raises(InvalidInputError):
        build_mime(make_email(), now=dt.datetime(2025, 5, 30, 2, 15))


def test_to_raw_base64url_decodes_to_same_message():
    msg = build_mime(make_email(html_body="<p>hi</p>"), now=NOW)
    raw = to_raw_base64url(msg)

    assert "+" not in raw
    assert "/" not in raw
    decoded = base64.urlsafe_b64decode(raw)
    assert decoded == msg.as_bytes()
    assert parse(decoded)["Message-ID"] == "<outbound-7f3a2c@crm.example.com>"
