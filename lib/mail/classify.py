"""Decide what a parsed message means for the CRM: a person's mail or automation.

Rules run in a fixed order and the first match wins:

1. ``draft``: Gmail label DRAFT.
2. ``personal``: the mailbox owner's own mail labelled SENT (the caller decides
   the direction).
3. ``spam``: label SPAM, ``X-Spam-Flag: YES``, ``X-Spam-Status: Yes`` or a
   qmail-scanner SpamAssassin verdict ``SA:1(score/required)`` in a Received header.
4. ``complaint``: an ARF feedback report (RFC 5965) or an Amazon SES complaint.
5. ``bounce``: a delivery status notification (RFC 3464) or a known
   non-standard bounce. Bounces often carry ``Auto-Submitted``, so this rule
   runs before the auto-reply rule.
6. ``read_receipt``: a message disposition notification (RFC 8098).
7. ``auto_reply``: RFC 3834 headers, vendor auto-reply headers or automatic-reply
   subjects with corroborating evidence.
8. ``list``: List-Id, List-Unsubscribe, bulk Precedence or a Gmail category label.
9. ``personal``: everything else.
"""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import date, datetime

from lib.mail.parse import ParsedMessage

KINDS = ("personal", "auto_reply", "bounce", "complaint", "read_receipt", "list", "draft", "spam")

LIST_LABELS = frozenset({"CATEGORY_PROMOTIONS", "CATEGORY_SOCIAL", "CATEGORY_FORUMS", "CATEGORY_UPDATES"})

REASON_PERSONAL = "no automation evidence"
REASON_OWN_SENT = "label SENT from the mailbox owner"

_STATUS_CODE = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_REPLY = re.compile(r"(?<![\d.])([245])\d\d(?=[ -])")
_EMAIL = re.compile(r"[\w.+'=/-]+@[\w-]+(?:\.[\w-]+)+")
_MESSAGE_ID_LINE = re.compile(r"^message-id:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)

# qmail-scanner writes SpamAssassin's verdict into its Received header: SA:1 is spam, SA:0 is not.
_QMAIL_SCANNER_SPAM = re.compile(r"\bSA:1\((-?[\d.]+)/(-?[\d.]+)\)")

_SYSTEM_SENDERS = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)\b", re.IGNORECASE)
_SYSTEM_NAMES = re.compile(r"mail delivery (subsystem|system)|mailer.daemon|postmaster", re.IGNORECASE)

# Subjects that delivery systems write, in English, French, German, Spanish and Chinese.
_FAILURE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (status notification|failure|has failed|failed|notification)"
    r"|mail delivery failed|returned mail|failure notice|bounce notification|non remis"
    r"|non distribuable|échec de (la )?(remise|distribution)|unzustellbar|no se puede entregar"
    r"|warning: message .* delayed|delayed mail|退信|無法傳遞|无法投递|無法投遞|投遞失敗|投递失败|未能送達|未送达",
    re.IGNORECASE,
)

# Texts that only mail transfer agents write, keyed by the reason reported.
_BOUNCE_TEXTS = (
    ("qmail bounce text", re.compile(r"This is the qmail-send program", re.IGNORECASE)),
    ("Exim bounce text", re.compile(r"This message was created automatically by mail delivery software")),
    ("Postfix bounce text", re.compile(r"This is the mail system at host")),
    ("Sendmail bounce text", re.compile(r"The following addresses had permanent fatal errors")),
    ("Exchange bounce text", re.compile(r"Delivery has failed to these recipients or groups|Your message (couldn't|could not) be delivered")),
    ("Gmail bounce text", re.compile(r"Your message wasn't delivered to|Address not found")),
    ("Domino bounce text", re.compile(r"was not delivered to:")),
    ("plain-text bounce notification", re.compile(r"automatic bounce notification|an email you sent was rejected", re.IGNORECASE)),
)

_DELAY_TEXT = re.compile(
    r"has not yet been delivered|has been delayed|delivery (is )?delayed|will continue to attempt|"
    r"No action is required on your part|Action: delayed",
    re.IGNORECASE,
)
_DIAGNOSTIC_LINE = re.compile(
    r"^\s*(?:reject reason|reason|diagnostic-code|remote server said)\s*:\s*(\S.*)$", re.IGNORECASE | re.MULTILINE,
)
_MAILBOX_FULL_TEXT = re.compile(r"mailbox (is )?full|over quota|quota exceeded|insufficient (disk )?space", re.IGNORECASE)

# Machine prefixes, followed by a colon, that mail software writes at the start of an
# automatic reply's subject.
_AUTO_REPLY_PREFIX = re.compile(
    r"^\s*(automatic reply|auto[- ]?reply|auto[- ]?response|autorespons|out of office auto ?reply"
    r"|out of office reply|réponse automatique|automatische antwort|abwesenheitsnotiz"
    r"|respuesta automática|自動回覆|自动回复|自動回信|自動答覆|自动答复)\s*[:：]",
    re.IGNORECASE,
)
# Wording that people also use in hand-written notes.
_VACATION_WORDING = re.compile(
    r"out of (the )?office|on vacation|on holiday|on leave|away until|away from (the )?office"
    r"|外出|休假|不在辦公室|不在办公室|請假|请假",
    re.IGNORECASE,
)
_VACATION_PREFIX = re.compile(rf"^\s*(?:{_VACATION_WORDING.pattern})\s*[:：]", re.IGNORECASE)

_READ_RECEIPT_SUBJECT = re.compile(r"^\s*(read|return receipt|已讀|已读|lu)\s*[:：(]", re.IGNORECASE)

_MONTHS = {name: index for index, names in enumerate((
    ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",),
    ("jun", "june"), ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"),
    ("oct", "october"), ("nov", "november"), ("dec", "december"),
), start=1) for name in names}
_MONTH_NAMES = "|".join(sorted(_MONTHS, key=len, reverse=True))
_UNTIL_EN = re.compile(
    r"\b(?:until|till|through|back on|return(?:ing)?(?: to the office)? on)\s+(?:\w+day,?\s+)?"
    rf"(?:(?P<day1>\d{{1,2}})(?:st|nd|rd|th)?\s+(?P<month1>{_MONTH_NAMES})\.?"
    rf"|(?P<month2>{_MONTH_NAMES})\.?\s+(?P<day2>\d{{1,2}})(?:st|nd|rd|th)?)"
    r"(?:,?\s+(?P<year>\d{4}))?",
    re.IGNORECASE,
)
_UNTIL_ZH = re.compile(r"(?:(?P<year>\d{4})年)?(?P<month>\d{1,2})月(?P<day>\d{1,2})[日號号]")


@dataclasses.dataclass(frozen=True)
class BounceInfo:
    """What a bounce reports about one failed recipient.

    Attributes:
        recipient: Lowercased address that failed, or None when the report names none.
        status: Enhanced status code such as ``"5.1.1"``, or None.
        permanent: True for a hard failure; False for delays, 4.x.x codes and
            mailbox-full texts without a status code.
        diagnostic: The remote server's message, shortened.
        original_message_id: ``<id>`` of the message that bounced, when known.
    """

    recipient: str | None
    status: str | None
    permanent: bool
    diagnostic: str | None
    original_message_id: str | None


@dataclasses.dataclass(frozen=True)
class Classification:
    """The kind of a message and why.

    Attributes:
        kind: One of ``KINDS``.
        reason: The evidence, such as ``"header Auto-Submitted: auto-replied"``.
        bounce: Details when ``kind`` is ``"bounce"``.
        auto_reply_until: Return date stated in an auto-reply, when found.
    """

    kind: str
    reason: str
    bounce: BounceInfo | None = None
    auto_reply_until: date | None = None


def classify(
    msg: ParsedMessage, *, labels: frozenset[str] = frozenset(), mailbox: str | None = None,
) -> Classification:
    """Classify a message by the first matching rule (see the module docstring).

    Args:
        msg: The parsed message.
        labels: Gmail label ids of the message, such as ``{"INBOX", "SENT"}``.
        mailbox: Address of the connected mailbox owner, if known.

    Returns:
        The classification; ``kind`` is always one of ``KINDS``.
    """
    labels = frozenset(label.upper() for label in labels)
    if "DRAFT" in labels:
        return Classification("draft", "label DRAFT")
    if "SPAM" in labels:
        return Classification("spam", "label SPAM")
    if _is_own_sent(msg, labels, mailbox):
        return Classification("personal", REASON_OWN_SENT)
    for rule in (_spam, _complaint, _bounce, _read_receipt, _auto_reply):
        result = rule(msg)
        if result is not None:
            return result
    return _list(msg, labels) or Classification("personal", REASON_PERSONAL)


def _is_own_sent(msg: ParsedMessage, labels: frozenset[str], mailbox: str | None) -> bool:
    if "SENT" not in labels or not mailbox or msg.from_address is None:
        return False
    return msg.from_address.address == mailbox.strip().lower()


def _header_value(msg: ParsedMessage, name: str) -> str:
    """Return a header's value without comments, lowercased; empty when absent."""
    value = msg.header(name) or ""
    return re.sub(r"\([^)]*\)", "", value).strip().lower()


# ---------------------------------------------------------------------------
# Spam, complaint, read receipt, list
# ---------------------------------------------------------------------------


def _spam(msg: ParsedMessage) -> Classification | None:
    if _header_value(msg, "x-spam-flag") == "yes":
        return Classification("spam", "header X-Spam-Flag: YES")
    if _header_value(msg, "x-spam-status").startswith("yes"):
        return Classification("spam", "header X-Spam-Status: Yes")
    for received in msg.header_all("Received"):
        verdict = _QMAIL_SCANNER_SPAM.search(received)
        if verdict:
            return Classification("spam", f"qmail-scanner SpamAssassin score {verdict.group(1)}/{verdict.group(2)}")
    return None


def _complaint(msg: ParsedMessage) -> Classification | None:
    if msg.report_type == "feedback-report" or msg.feedback_report is not None:
        return Classification("complaint", "multipart/report; report-type=feedback-report")
    notification = _ses_notification(msg)
    if notification and notification.get("notificationType") == "Complaint":
        return Classification("complaint", "Amazon SES complaint notification")
    return None


def _read_receipt(msg: ParsedMessage) -> Classification | None:
    if msg.report_type == "disposition-notification" or msg.disposition_notification is not None:
        return Classification("read_receipt", "multipart/report; report-type=disposition-notification")
    if not _READ_RECEIPT_SUBJECT.match(msg.subject):
        return None
    if "mdn" in _header_value(msg, "content-class"):
        return Classification("read_receipt", "header Content-Class: urn:content-classes:mdn")
    if re.search(r"was (received|read) by|was read on", msg.body_text, re.IGNORECASE):
        return Classification("read_receipt", "return receipt subject and text")
    return None


def _list(msg: ParsedMessage, labels: frozenset[str]) -> Classification | None:
    for name in ("List-Id", "List-Unsubscribe"):
        if msg.header(name) is not None:
            return Classification("list", f"header {name}")
    precedence = _header_value(msg, "precedence")
    if precedence in ("bulk", "list", "junk"):
        return Classification("list", f"header Precedence: {precedence}")
    for label in sorted(labels & LIST_LABELS):
        return Classification("list", f"label {label}")
    return None


# ---------------------------------------------------------------------------
# Bounces
# ---------------------------------------------------------------------------


def _bounce(msg: ParsedMessage) -> Classification | None:
    """Detect a bounce: DSN first, then Amazon SES, then plain-text bounce signatures."""
    if msg.report_type == "delivery-status" or msg.delivery_status:
        reason = "multipart/report; report-type=delivery-status"
        if msg.report_type != "delivery-status":
            reason = "message/delivery-status part"
        return Classification("bounce", reason, _bounce_from_dsn(msg) or _bounce_from_text(msg))

    notification = _ses_notification(msg)
    if notification and notification.get("notificationType") == "Bounce":
        return Classification("bounce", "Amazon SES bounce notification", _bounce_from_ses(msg, notification))

    reason = _text_bounce_reason(msg)
    if reason is not None:
        return Classification("bounce", reason, _bounce_from_text(msg))
    return None


def _from_system(msg: ParsedMessage) -> bool:
    sender = msg.from_address
    if sender is None:
        return False
    return bool(_SYSTEM_SENDERS.match(sender.address) or _SYSTEM_NAMES.search(sender.display_name))


def _text_bounce_reason(msg: ParsedMessage) -> str | None:
    """Name the evidence for a bounce without a DSN part, or return None.

    MTA bounce texts count only when the message is automatic (system sender,
    null Return-Path or Auto-Submitted), so a person forwarding a bounce is not one.
    """
    if msg.header("X-Failed-Recipients"):
        return "header X-Failed-Recipients"
    automatic = (
        _from_system(msg)
        or _header_value(msg, "return-path") == "<>"
        or _header_value(msg, "auto-submitted") not in ("", "no")
    )
    if not automatic:
        return None
    for reason, pattern in _BOUNCE_TEXTS:
        if pattern.search(msg.body_text[:5000]):
            return reason
    if _from_system(msg) and _FAILURE_SUBJECT.search(msg.subject):
        return "system sender and delivery-failure subject"
    return None


def _recipient_groups(msg: ParsedMessage) -> list[dict[str, str]]:
    return [group for group in msg.delivery_status if "final-recipient" in group or "action" in group]


def _bounce_from_dsn(msg: ParsedMessage) -> BounceInfo | None:
    groups = _recipient_groups(msg)
    if not groups:
        return None
    group = next((g for g in groups if g.get("action", "").lower().startswith("failed")), None)
    group = group or next((g for g in groups if g.get("action", "").lower().startswith("delayed")), groups[0])

    recipient = _address_field(group.get("final-recipient")) or _address_field(group.get("original-recipient"))
    diagnostic = _diagnostic_field(group.get("diagnostic-code"))
    status = _status_code(group.get("status", "")) or _status_code(diagnostic or "")
    action = group.get("action", "").strip().lower()
    permanent = _is_permanent(status, action, diagnostic or "")
    return BounceInfo(
        recipient=recipient or _failed_recipient_header(msg),
        status=status,
        permanent=permanent,
        diagnostic=diagnostic,
        original_message_id=_original_message_id(msg),
    )


def _address_field(value: str | None) -> str | None:
    """Return the address of a DSN field such as ``rfc822; user@example.com``."""
    if not value:
        return None
    address = value.split(";", 1)[-1].strip().strip("<>").strip()
    return address.lower() or None


def _diagnostic_field(value: str | None) -> str | None:
    if not value:
        return None
    text = value.split(";", 1)[-1] if ";" in value[:12] else value
    return re.sub(r"\s+", " ", text).strip()[:300] or None


def _status_code(text: str) -> str | None:
    match = _STATUS_CODE.search(text)
    return ".".join(match.groups()) if match else None


def _is_permanent(status: str | None, action: str, text: str) -> bool:
    """Decide permanence by status class, then SMTP reply class, then wording.

    A mailbox-full text without any code counts as temporary, because
    4.2.2 and 5.2.2 both occur for it and a later retry often succeeds.
    """
    if status:
        return status.startswith("5")
    if action.startswith("delayed") or _DELAY_TEXT.search(text):
        return False
    reply = _SMTP_REPLY.search(text)
    if reply:
        return reply.group(1) == "5"
    if action.startswith("failed"):
        return True
    return not _MAILBOX_FULL_TEXT.search(text)


def _failed_recipient_header(msg: ParsedMessage) -> str | None:
    value = msg.header("X-Failed-Recipients")
    if not value:
        return None
    return value.split(",")[0].strip().strip("<>").lower() or None


def _original_message_id(msg: ParsedMessage) -> str | None:
    """Find the bounced message's id: returned headers, In-Reply-To, References, body."""
    if msg.returned_headers is not None:
        match = re.search(r"<[^<>\s]+>", msg.returned_headers.get("message-id") or "")
        if match:
            return match.group(0)
    if msg.in_reply_to:
        return msg.in_reply_to
    if msg.references:
        return msg.references[-1]
    match = _MESSAGE_ID_LINE.search(msg.body_text)
    return match.group(1) if match else None


def _bounce_text_section(body: str) -> str:
    """Return the report text before the copy of the returned message."""
    markers = (
        r"^-+ ?This is a copy of the message", r"^--- Below this line is a copy",
        r"^-+ ?Original message", r"^bounced E-Mail:", r"^Return-[Pp]ath:", r"^Received:",
    )
    cut = len(body)
    for marker in markers:
        match = re.search(marker, body, re.MULTILINE | re.IGNORECASE)
        if match:
            cut = min(cut, match.start())
    return body[:cut]


def _text_recipient(section: str, msg: ParsedMessage) -> tuple[str | None, int]:
    """Find the failed address in a bounce text; return it and where it ends."""
    ignored = {address.address for address in (*msg.to, *msg.cc) if address.address}
    if msg.from_address:
        ignored.add(msg.from_address.address)
    patterns = (
        r"^<([^<>\s]+@[^<>\s]+)>:",  # qmail
        r"(?:target mail address|final-recipient|original-recipient):\s*(?:rfc822;)?\s*<?([^<>\s]+@[^<>\s]+)",
        r"^\s+<?([^<>\s@]+@[^<>\s]+?)>?\s*$",  # Exim, Sendmail: the address alone on an indented line
    )
    for pattern in patterns:
        for match in re.finditer(pattern, section, re.MULTILINE | re.IGNORECASE):
            address = match.group(1).strip(".").lower()
            if address not in ignored:
                return address, match.end()
    for match in _EMAIL.finditer(section):
        address = match.group(0).strip(".").lower()
        if address not in ignored and not _SYSTEM_SENDERS.match(address):
            return address, match.end()
    return None, 0


def _bounce_from_text(msg: ParsedMessage) -> BounceInfo:
    section = _bounce_text_section(msg.body_text)
    recipient, end = _text_recipient(section, msg)
    recipient = _failed_recipient_header(msg) or recipient

    detail = section[end:end + 600] if end else section[:600]
    labelled = _DIAGNOSTIC_LINE.search(section)
    paragraph = re.split(r"\n\s*\n", detail.strip(), maxsplit=1)[0] if detail.strip() else ""
    diagnostic = re.sub(r"\s+", " ", labelled.group(1) if labelled else paragraph).strip()[:300] or None
    status = _status_code(detail) or _status_code(msg.subject)
    whole = f"{msg.subject}\n{section}"
    delayed = bool(_DELAY_TEXT.search(whole)) or bool(re.search(r"\bdelayed\b", msg.subject, re.IGNORECASE))
    permanent = False if delayed else _is_permanent(status, "", f"{detail}\n{whole}")
    return BounceInfo(recipient, status, permanent, diagnostic, _original_message_id(msg))


def _ses_notification(msg: ParsedMessage) -> dict | None:
    """Return the JSON body of an Amazon SNS notification about SES mail, or None."""
    body = msg.body_text
    start = body.find('{"notificationType"')
    if start < 0:
        return None
    try:
        payload, _end = json.JSONDecoder(strict=False).raw_decode(body[start:])
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _bounce_from_ses(msg: ParsedMessage, notification: dict) -> BounceInfo:
    bounce = notification.get("bounce") or {}
    recipients = bounce.get("bouncedRecipients") or [{}]
    first = recipients[0] if isinstance(recipients[0], dict) else {}
    diagnostic = _diagnostic_field(first.get("diagnosticCode"))
    status = _status_code(str(first.get("status") or "")) or _status_code(diagnostic or "")
    permanent = bounce.get("bounceType") == "Permanent" if "bounceType" in bounce else _is_permanent(status, "", "")
    address = str(first.get("emailAddress") or "").lower() or None
    return BounceInfo(address, status, permanent, diagnostic, _ses_message_id(notification))


def _ses_message_id(notification: dict) -> str | None:
    mail = notification.get("mail") or {}
    for header in mail.get("headers") or []:
        if isinstance(header, dict) and str(header.get("name", "")).lower() == "message-id":
            return str(header.get("value"))
    common = mail.get("commonHeaders") or {}
    return common.get("messageId")


# ---------------------------------------------------------------------------
# Automatic replies
# ---------------------------------------------------------------------------


def _auto_reply(msg: ParsedMessage) -> Classification | None:
    reason = _auto_reply_header_reason(msg) or _auto_reply_subject_reason(msg)
    if reason is None:
        return None
    return Classification("auto_reply", reason, auto_reply_until=_return_date(msg))


def _auto_reply_header_reason(msg: ParsedMessage) -> str | None:
    auto_submitted = _header_value(msg, "auto-submitted")
    if auto_submitted and auto_submitted != "no":
        return f"header Auto-Submitted: {auto_submitted}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autogenerated"):
        value = _header_value(msg, name)
        if value and value != "no":
            return f"header {name}: {value}"
    if _header_value(msg, "precedence") == "auto_reply":
        return "header Precedence: auto_reply"
    if _header_value(msg, "x-apple-action") == "vacation":
        return "header X-Apple-Action: VACATION"
    return None


def _auto_reply_subject_reason(msg: ParsedMessage) -> str | None:
    """Apply subject rules, which need evidence that software wrote the message.

    People write notes such as "Legal out of office" to many colleagues, so
    vacation wording alone never decides. The rule:

    - A machine prefix at the start of the subject ("Automatic reply:",
      "Out of Office AutoReply:", "自動回覆:" and similar) decides on its own,
      because mail software writes it and people do not type it.
    - Vacation wording anywhere in the subject ("out of office", "外出",
      "休假", "不在辦公室") decides only with one of: a null Return-Path,
      ``X-MS-Exchange-Inbox-Rules-Loop``, ``X-Auto-Response-Suppress``, or a
      reply-in-kind subject ("Out of Office: <original subject>") sent to one
      recipient without In-Reply-To.
    """
    subject = msg.subject
    prefix = _AUTO_REPLY_PREFIX.match(subject)
    if prefix:
        return f"subject prefix {prefix.group(1)!r}"
    wording = _VACATION_WORDING.search(subject)
    if not wording:
        return None
    evidence = _automation_evidence(msg)
    return f"subject {wording.group(0)!r} with {evidence}" if evidence else None


def _automation_evidence(msg: ParsedMessage) -> str | None:
    if _header_value(msg, "return-path") == "<>":
        return "null Return-Path"
    for name in ("X-MS-Exchange-Inbox-Rules-Loop", "X-Auto-Response-Suppress"):
        if msg.header(name) is not None:
            return f"header {name}"
    in_kind = _VACATION_PREFIX.match(msg.subject)
    if in_kind and len(msg.to) == 1 and not msg.in_reply_to:
        return "reply-in-kind subject to one recipient"
    return None


def _return_date(msg: ParsedMessage) -> date | None:
    """Find "until 9 June" or "6月9日" in the subject or body; None when absent."""
    text = f"{msg.subject}\n{msg.body_text[:2000]}"
    match = _UNTIL_EN.search(text)
    if match:
        month = _MONTHS[(match.group("month1") or match.group("month2")).lower().rstrip(".")]
        day = int(match.group("day1") or match.group("day2"))
        return _resolve_date(msg.date, match.group("year"), month, day)
    match = _UNTIL_ZH.search(text)
    if match:
        return _resolve_date(msg.date, match.group("year"), int(match.group("month")), int(match.group("day")))
    return None


def _resolve_date(sent: datetime | None, year: str | None, month: int, day: int) -> date | None:
    """Build the date, taking a missing year as the first such date on or after ``sent``."""
    try:
        if year:
            return date(int(year), month, day)
        if sent is None:
            return None
        candidate = date(sent.year, month, day)
        return candidate if candidate >= sent.date() else date(sent.year + 1, month, day)
    except ValueError:
        return None
