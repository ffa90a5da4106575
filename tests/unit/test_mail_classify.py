"""Unit tests of lib.mail.classify on real bounces, auto-replies and human mail."""

import functools
from datetime import date
from pathlib import Path

import pytest

from lib.mail.classify import KINDS, REASON_OWN_SENT, classify
from lib.mail.parse import parse_bytes

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
EMAIL_DIR = SHARED / "data" / "email"

if not EMAIL_DIR.is_dir():
    pytest.skip(f"shared data not found at {EMAIL_DIR}", allow_module_level=True)

SPECIAL_KINDS = {
    "bounce_sisimai_arf_01_feedback.eml": "complaint",
    "autoreply_flanker_mdn.eml": "read_receipt",
}


def expected_kind(name: str) -> str:
    if name in SPECIAL_KINDS:
        return SPECIAL_KINDS[name]
    return "bounce" if name.startswith("bounce_") else "auto_reply"


@functools.lru_cache(maxsize=None)
def parse_file(name: str):
    return parse_bytes((EMAIL_DIR / name).read_bytes())


def classify_file(name: str, **kwargs):
    return classify(parse_file(name), **kwargs)


AUTOMATED_FILES = sorted(
    path.name for path in EMAIL_DIR.glob("*.eml") if path.name.startswith(("bounce_", "autoreply_"))
)
ENRON_FILES = sorted(path.name for path in EMAIL_DIR.glob("enron_*.eml"))


@pytest.mark.parametrize("name", AUTOMATED_FILES)
def test_automated_file_kind(name):
    assert classify_file(name).kind == expected_kind(name)


@pytest.mark.parametrize(
    "name", ["enron_jones-t_notes_inbox_4412.eml", "enron_jones-t_all_documents_11628.eml"],
)
def test_human_out_of_office_note_is_personal(name):
    assert classify_file(name).kind == "personal"


@pytest.mark.parametrize("name", ENRON_FILES)
def test_enron_business_mail_is_personal(name):
    assert classify_file(name).kind == "personal"


@pytest.mark.parametrize(
    ("name", "recipient", "status", "permanent"),
    [
        ("bounce_sisimai_sendmail_01.eml", "userunknown@bouncehammer.jp", "5.1.1", True),
        ("bounce_sisimai_rfc3464_01_cr_only.eml", "userunknown@bouncehammer.jp", "5.1.1", True),
        ("bounce_sisimai_postfix_01.eml", "r@p351355.pool.example.ne.jp", "5.1.1", True),
        ("bounce_sisimai_qmail_01.eml", "kijitora@example.ne.jp", "5.5.0", True),
        ("bounce_sisimai_exim_01.eml", "kijitora@example.ed.jp", "5.7.0", True),
        ("bounce_sisimai_exim_38_delay.eml", "kijitora@example.co.jp", None, False),
        ("bounce_sisimai_amazonses_09_sns.eml", "bounce@simulator.amazonses.com", "5.1.1", True),
        ("bounce_flanker_aol_mailbox_full.eml", "user@aol.com", "5.2.2", True),
        ("bounce_flanker_office365.eml", "noname@example.com", "5.1.10", True),
        ("bounce_sisimai_exchange2007_06_fr.eml", "transports@agglo-saumur.fr", "5.1.1", True),
        ("bounce_sisimai_plaintext_mailboxfull.eml", "xxxx@yyyyyy.net", None, False),
    ],
)
def test_bounce_details(name, recipient, status, permanent):
    bounce = classify_file(name).bounce
    assert bounce.recipient == recipient
    assert bounce.status == status
    assert bounce.permanent is permanent


def test_bounce_id_from_returned_headers():
    bounce = classify_file("bounce_sisimai_sendmail_01.eml").bounce
    assert bounce.original_message_id == "<E1C50F1B-1C83-4820-BC36-AC6FBFBE8568@example.org>"


def test_office365_id_from_in_reply_to():
    bounce = classify_file("bounce_flanker_office365.eml").bounce
    assert bounce.original_message_id == "<20171013111011.20866.254C2F3A4D7AA526@ninomail.com>"


def test_domino_diagnostic_decodes_iso2022jp():
    assert "ディレクトリ" in classify_file("bounce_sisimai_domino_02_iso2022jp.eml").bounce.diagnostic


def test_bounce_wins_over_auto_submitted():
    result = classify_file("bounce_sisimai_postfix_01.eml")
    assert result.kind == "bounce"
    assert result.reason == "multipart/report; report-type=delivery-status"


def test_list_relayed_bounce_is_bounce():
    assert classify_file("cpython_msg_16.eml").kind == "bounce"


def test_auto_reply_reason_names_header():
    assert classify_file("autoreply_sisimai_rfc3834_01.eml").reason == "header Auto-Submitted: auto-replied"


def test_exchange_prefix_without_headers():
    assert classify_file("autoreply_sa_exchange_ooo_gb2312.eml").reason == "subject prefix 'Out of Office AutoReply'"


def test_auto_reply_return_date():
    assert classify_file("autoreply_sisimai_rfc3834_01.eml").auto_reply_until == date(2005, 5, 5)


@pytest.mark.parametrize("name", ["cjk_sa_big5_raw8bit_list.eml", "cpython_msg_32.eml"])
def test_list_headers_give_list(name):
    assert classify_file(name).kind == "list"


def make(headers: str, body: str = "Hello") -> bytes:
    return (headers.strip() + "\n\n" + body + "\n").encode("utf-8")


BASE = "From: Mei Lin <mei.lin@example.com>\nTo: sales@example.com\nMessage-ID: <m1@example.com>"


@pytest.mark.parametrize(
    ("extra", "labels", "kind"),
    [
        ("Subject: hi", frozenset({"DRAFT"}), "draft"),
        ("Subject: hi", frozenset({"SPAM"}), "spam"),
        ("Subject: hi\nX-Spam-Flag: YES", frozenset(), "spam"),
        ("Subject: hi\nX-Spam-Status: Yes, score=9.1", frozenset(), "spam"),
        ("Subject: hi\nX-Autoreply: yes", frozenset(), "auto_reply"),
        ("Subject: hi\nPrecedence: auto_reply", frozenset(), "auto_reply"),
        ("Subject: 自動回覆: 報價", frozenset(), "auto_reply"),
        ("Subject: 自动回复：报价", frozenset(), "auto_reply"),
        ("Subject: Réponse automatique : devis", frozenset(), "auto_reply"),
        ("Subject: 休假中\nX-MS-Exchange-Inbox-Rules-Loop: mei.lin@example.com", frozenset(), "auto_reply"),
        ("Subject: 不在辦公室\nReturn-Path: <>", frozenset(), "auto_reply"),
        ("Subject: Out of Office: Proposal", frozenset(), "auto_reply"),
        ("Subject: 我下週外出，請找王先生", frozenset(), "personal"),
        ("Subject: Team out of the office on Friday", frozenset(), "personal"),
        ("Subject: hi", frozenset({"CATEGORY_PROMOTIONS"}), "list"),
        ("Subject: hi\nPrecedence: bulk", frozenset(), "list"),
        ("Subject: hi", frozenset({"INBOX"}), "personal"),
    ],
)
def test_rule_table(extra, labels, kind):
    assert classify(parse_bytes(make(BASE + "\n" + extra)), labels=labels).kind == kind


def test_chinese_bounce_subject_from_postmaster():
    raw = make("From: postmaster@example.com.tw\nTo: sales@example.com\nSubject: 退信通知", "無法傳遞給 ghost@example.com.tw")
    result = classify(parse_bytes(raw))
    assert result.kind == "bounce"
    assert result.bounce.recipient == "ghost@example.com.tw"


def test_forwarded_bounce_from_person_is_personal():
    raw = make(BASE + "\nSubject: FW: Undeliverable", "This is the qmail-send program at mx.example.com.")
    assert classify(parse_bytes(raw)).kind == "personal"


def test_own_sent_message_is_personal():
    raw = make("From: sales@example.com\nTo: mei.lin@example.com\nSubject: Out of Office: note")
    result = classify(parse_bytes(raw), labels=frozenset({"SENT"}), mailbox="Sales@Example.com")
    assert result.kind == "personal"
    assert result.reason == REASON_OWN_SENT


def test_every_kind_is_known():
    for path in EMAIL_DIR.glob("*.eml"):
        assert classify_file(path.name).kind in KINDS
