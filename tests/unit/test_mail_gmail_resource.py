"""Unit tests of lib.mail.gmail_resource on recorded users.messages.get responses."""

import base64
import functools
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from lib.mail.classify import classify
from lib.mail.gmail_resource import decode_base64url, parse_gmail_message
from lib.mail.parse import Address

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
INPUTS = SHARED / "fixtures" / "inputs"

if not INPUTS.is_dir():
    pytest.skip(f"shared data not found at {INPUTS}", allow_module_level=True)

OWNER = "sales@example.com"


@functools.lru_cache(maxsize=None)
def load(name: str):
    return json.loads((INPUTS / f"gmail_msg_{name}.json").read_text(encoding="utf-8"))


def parse(name: str):
    return parse_gmail_message(load(name)["response"])


def kind_of(name: str) -> str:
    parsed, labels = parse(name)
    return classify(parsed, labels=labels, mailbox=OWNER).kind


def test_quoted_comma_name_is_one_address():
    parsed, _labels = parse("metadata_reply")
    assert parsed.from_address == Address("Lin, Mei", "mei.lin@example.com")


def test_metadata_headers_any_case():
    parsed, _labels = parse("metadata_reply")
    assert parsed.message_id == "<CAF3x9Pq2mReply01@mail.example.com>"
    assert parsed.header("message-id") == parsed.header("Message-ID")


def test_metadata_reply_threading_and_cc():
    parsed, _labels = parse("metadata_reply")
    assert parsed.in_reply_to == "<outbound-7f3a2c@crm.example.com>"
    assert parsed.references == ("<outbound-7f3a2c@crm.example.com>",)
    assert parsed.cc == (Address("Wang Da-Ming", "daming.wang@example.com"),)


def test_internal_date_beats_date_header():
    parsed, _labels = parse("metadata_reply")
    assert parsed.date == datetime.fromtimestamp(1748571249, tz=timezone.utc)


def test_metadata_reply_is_personal():
    assert kind_of("metadata_reply") == "personal"


def test_labels_returned():
    _parsed, labels = parse("metadata_reply")
    assert labels == frozenset({"UNREAD", "IMPORTANT", "CATEGORY_PERSONAL", "INBOX"})


def test_alternative_prefers_plain_text():
    parsed, _labels = parse("full_alternative")
    expected = load("full_alternative")["_decoded"]["text_plain"].replace("\r\n", "\n").strip()
    assert parsed.body_text == expected
    assert parsed.has_html


def test_encoded_from_name_decodes():
    parsed, _labels = parse("full_alternative")
    assert parsed.from_address == Address("張雅婷", "yating.chang@example.com")


def test_chinese_encoded_words():
    parsed, _labels = parse("encoded_words_chinese")
    decoded = load("encoded_words_chinese")["_decoded"]
    assert parsed.from_address == Address(decoded["from_name"], decoded["from_email"])
    assert parsed.subject == decoded["subject"]
    assert parsed.thread_topic == decoded["thread_topic"]


def test_big5_body_decodes():
    parsed, _labels = parse("encoded_words_chinese")
    expected = load("encoded_words_chinese")["_decoded"]["text_plain"].replace("\r\n", "\n").strip()
    assert parsed.body_text == expected


def test_reply_to_plus_address_kept():
    parsed, _labels = parse("encoded_words_chinese")
    assert parsed.reply_to == (Address("陳怡君", "yijun.chen+quotes@example.com"),)


def test_nested_body_found():
    parsed, _labels = parse("full_nested_mixed")
    assert parsed.body_text == "Please see the attached RFP.\nBest,\nHuang Chih-Hao"


def test_nested_reply_to_odd_case():
    parsed, _labels = parse("full_nested_mixed")
    assert parsed.reply_to == (Address("Procurement Desk", "procurement@example.com"),)
    assert parsed.from_address.address == "chihhao.huang@example.com"


def test_rfc2231_chinese_filename():
    parsed, _labels = parse("full_nested_mixed")
    pdf = [item for item in parsed.attachments if item.content_type == "application/pdf"]
    assert pdf[0].filename == "RFP_2025_報價需求.pdf"
    assert pdf[0].size == 284331


def test_hard_bounce_details():
    parsed, labels = parse("bounce_hard")
    result = classify(parsed, labels=labels, mailbox=OWNER)
    assert result.kind == "bounce"
    assert result.bounce.recipient == "ghost.user@example.com"
    assert result.bounce.status == "5.1.1"
    assert result.bounce.permanent is True
    assert result.bounce.original_message_id == "<outbound-9c1d77@crm.example.com>"


def test_mailing_list_kind():
    assert kind_of("mailing_list") == "list"


def test_undisclosed_recipients_has_no_address():
    parsed, _labels = parse("mailing_list")
    assert parsed.to == ()


def test_auto_reply_kind():
    assert kind_of("auto_reply_ooo") == "auto_reply"


def test_own_sent_is_personal():
    parsed, labels = parse("own_sent")
    assert "SENT" in labels
    assert classify(parsed, labels=labels, mailbox=OWNER).kind == "personal"


def test_raw_format_uses_same_parser():
    raw = "From: =?UTF-8?B?6Zmz5oCh5ZCb?= <yijun.chen@example.com>\r\nSubject: hi\r\n\r\nbody\r\n".encode()
    resource = {"id": "1", "labelIds": ["INBOX"], "raw": base64.urlsafe_b64encode(raw).decode().rstrip("=")}
    parsed, labels = parse_gmail_message(resource)
    assert parsed.from_address == Address("陳怡君", "yijun.chen@example.com")
    assert parsed.body_text == "body"
    assert labels == frozenset({"INBOX"})


def test_base64url_padding_restored():
    assert decode_base64url("SGVsbG8") == b"Hello"


def test_resource_without_payload_rejected():
    with pytest.raises(ValueError, match="expected a dict with 'raw' or 'payload'"):
        parse_gmail_message({"id": "1"})


def test_deep_payload_is_bounded():
    part = {"mimeType": "text/plain", "body": {"data": "aGk"}}
    for _ in range(50):
        part = {"mimeType": "multipart/mixed", "parts": [part]}
    parsed, _labels = parse_gmail_message({"payload": part})
    assert any("nested deeper" in defect for defect in parsed.defects)
