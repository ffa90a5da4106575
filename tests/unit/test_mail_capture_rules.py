"""Lead capture rules for unknown senders: spam signals, addressing and message age."""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from pathlib import Path

import pytest

from lib.config.loader import load_config
from lib.devstack import mailrun
from lib.mail.classify import classify
from lib.mail.parse import parse_bytes
from tests.unit.mail_sync_support import MAILBOX, NOW, mail_config, make_service

REPO_ROOT = Path(__file__).resolve().parents[2]


def enquiry(*, to: str = MAILBOX, sent: dt.datetime = NOW - dt.timedelta(days=1), extra: str = "") -> bytes:
    """Build a plain-text enquiry from an unknown sender."""
    headers = (
        "From: Amy Chen <amy.chen@prospect.example.org>\r\n"
        f"To: {to}\r\n"
        "Subject: Quote for a new website\r\n"
        f"Date: {email.utils.format_datetime(sent)}\r\n"
        f"Message-ID: <enquiry-{sent.timestamp():.0f}@prospect.example.org>\r\n"
        f"{extra}"
        "Content-Type: text/plain; charset=utf-8\r\n"
    )
    return (headers + "\r\nPlease send a quote for a five-page website.\r\n").encode("utf-8")


def process(raw: bytes, config=None):
    """Process one raw inbound message in ``MAILBOX``; return the result and the store."""
    service, store, _clock = make_service(None, config)
    result = service.process_parsed(MAILBOX, "msg-1", "thread-1", parse_bytes(raw), frozenset({"INBOX"}))
    return result, store


def readdress(raw: bytes) -> bytes:
    """Point a stored message's To at ``MAILBOX`` and its Date at yesterday, so only its spam signals remain."""
    raw = re.sub(rb"(?m)^To:.*\r?$", f"To: {MAILBOX}".encode(), raw, count=1)
    date = email.utils.format_datetime(NOW - dt.timedelta(days=1)).encode()
    return re.sub(rb"(?m)^Date:.*\r?$", b"Date: " + date, raw, count=1)


@pytest.fixture
def spam_mail(shared_dir):
    def read(name: str) -> bytes:
        return (shared_dir / "data" / "email" / name).read_bytes()

    return read


def test_recent_enquiry_is_captured():
    result, store = process(enquiry())

    assert result.effects == ("lead_captured",)
    assert result.capture_skipped is None
    assert len(store.docs("leads")) == 1


def test_old_enquiry_logged_not_captured():
    result, store = process(enquiry(sent=NOW - dt.timedelta(days=45)))

    assert result.status == "ignored"
    assert result.capture_skipped == "too_old"
    assert store.docs("leads") == {}


def test_max_age_none_captures_old_enquiry():
    config = mail_config(capture=mail_config().mail.capture.model_copy(update={"max_age_days": None}))
    result, store = process(enquiry(sent=NOW - dt.timedelta(days=400)), config)

    assert result.effects == ("lead_captured",)
    assert len(store.docs("leads")) == 1


def test_bcc_enquiry_not_captured():
    result, store = process(enquiry(to="undisclosed-recipients:;"))

    assert result.capture_skipped == "not_addressed_to_mailbox"
    assert store.docs("leads") == {}


def test_enquiry_to_alias_is_captured():
    capture = mail_config().mail.capture.model_copy(update={"mailbox_aliases": ("Hello@Example.com",)})
    result, store = process(enquiry(to="hello@example.com"), mail_config(capture=capture))

    assert result.effects == ("lead_captured",)
    assert len(store.docs("leads")) == 1


@pytest.mark.parametrize("extra, reason", [
    ("Reply-To: amy.chen.sales@qq.com\r\n", "spam_signals: freemail_reply_to"),
    ("Precedence: bulk\r\n", None),
])
def test_enquiry_header_signals(extra, reason):
    result, store = process(enquiry(extra=extra))

    assert result.capture_skipped == reason
    assert store.docs("leads") == {}


def test_enquiry_without_message_id_or_date():
    raw = re.sub(rb"(?m)^(Message-ID|Date):.*\r\n", b"", enquiry())
    result, store = process(raw)

    assert result.capture_skipped == "spam_signals: no_message_id, no_date"
    assert store.docs("leads") == {}


def test_qmail_scanner_verdict_is_spam(spam_mail):
    raw = spam_mail("cjk_sa_gb2312_raw8bit_headers.eml")
    classification = classify(parse_bytes(raw), labels=frozenset({"INBOX"}), mailbox=MAILBOX)
    result, store = process(raw)

    assert classification.kind == "spam"
    assert classification.reason == "qmail-scanner SpamAssassin score 19.4/5.0"
    assert result.kind == "spam"
    assert result.capture_skipped is None
    assert store.docs("leads") == {}


def test_qmail_scanner_verdict_readdressed(spam_mail):
    result, store = process(readdress(spam_mail("cjk_sa_gb2312_raw8bit_headers.eml")))

    assert result.kind == "spam"
    assert store.docs("leads") == {}


@pytest.mark.parametrize("name, reason", [
    ("cjk_spamscope_gb2312_from_subject.eml", "spam_signals: no_message_id"),
    ("cjk_sa_utf8_q_subject_spam.eml", "spam_signals: freemail_reply_to"),
])
def test_spam_file_not_captured(spam_mail, name, reason):
    result, store = process(spam_mail(name))

    assert result.kind == "personal"
    assert result.capture_skipped == reason
    assert store.docs("leads") == {}


@pytest.mark.parametrize("name, reason", [
    ("cjk_spamscope_gb2312_from_subject.eml", "spam_signals: no_message_id"),
    ("cjk_sa_utf8_q_subject_spam.eml", "spam_signals: freemail_reply_to"),
])
def test_spam_file_readdressed_not_captured(spam_mail, name, reason):
    result, store = process(readdress(spam_mail(name)))

    assert result.capture_skipped == reason
    assert store.docs("leads") == {}


def test_demo_mail_captures_two_leads():
    config = load_config()
    service, store, _clock = make_service(None, config)
    results = mailrun.process_files(service, config, [REPO_ROOT / "demo" / "mail"])

    captured = [Path(label).name for label, result in results if "lead_captured" in result.effects]
    assert captured == ["01-enquiry-chinese.eml", "02-enquiry-english.eml"]
    assert len(store.docs("leads")) == 2
    assert [result.capture_skipped for _label, result in results if result.capture_skipped] == []
