"""Link one mail message to contacts and a deal: the facts of a message and the stored documents about it.

``message_facts`` is pure. ``load_snapshot`` reads, inside the message's
transaction, every document the effects depend on, in at most four rounds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable

from lib.config.schema import CrmConfig
from lib.domain import ids
from lib.domain.normalize import normalize_email
from lib.mail.classify import Classification
from lib.mail.parse import Address, ParsedMessage
from lib.services.mail_store import TransactionReader

MAX_REFERENCES = 20
"""References checked per message, newest first; long threads repeat old ids."""
MAX_SNIPPET = 500
_OUTBOX_MESSAGE_ID = re.compile(r"^<(ob-[A-Za-z0-9_-]+)@([^>]+)>$")


def activity_id(mailbox: str, gmail_id: str) -> str:
    """Return the id of the activity that logs one Gmail message of one mailbox."""
    return "em-" + ids.digest(mailbox.lower(), gmail_id)


def message_link_id(message_id: str) -> str:
    """Return the ``message_links`` document id of an RFC 5322 Message-ID."""
    return ids.digest(message_id.strip().lower(), length=40)


def thread_link_id(mailbox: str, thread_id: str) -> str:
    """Return the ``thread_links`` document id of a Gmail thread in one mailbox."""
    return f"{mailbox.lower()}:{thread_id}"


@dataclasses.dataclass(frozen=True)
class Party:
    """One address on a message, with the header it came from and its dedupe key."""

    header: str
    name: str
    address: str
    canonical: str


@dataclasses.dataclass(frozen=True)
class MessageFacts:
    """Facts of one message, known before the store is read.

    Attributes:
        mailbox: Connected mailbox that saw the message, lowercased.
        gmail_id: Gmail message id (or a file label in local runs).
        thread_id: Gmail thread id, when known.
        message_id: RFC 5322 Message-ID with angle brackets, when present.
        direction: ``inbound`` or ``outbound``.
        classification: What ``lib.mail.classify`` decided.
        parties: Counterparty addresses, the mailbox itself left out.
        sender: The person an inbound message is from: the From party, or
            the Reply-To party when From is a no-reply relay.
        references: In-Reply-To, References and a bounce's original
            Message-ID, newest first.
        occurred_at: Gmail's internalDate, else the Date header, else now.
        subject: Decoded subject.
        snippet: First characters of the body text.
        labels: Gmail label ids.
        capture_event_id: Event id the message would have as a lead.
        recipients: Canonical addresses in To and Cc, the mailbox included.
    """

    mailbox: str
    gmail_id: str
    thread_id: str | None
    message_id: str | None
    direction: str
    classification: Classification
    parties: tuple[Party, ...]
    sender: Party | None
    references: tuple[str, ...]
    occurred_at: dt.datetime
    subject: str
    snippet: str
    labels: frozenset[str]
    capture_event_id: str
    recipients: frozenset[str] = frozenset()

    @property
    def activity_id(self) -> str:
        return activity_id(self.mailbox, self.gmail_id)

    @property
    def event_key(self) -> str:
        return f"{self.mailbox}:{self.gmail_id}"

    @property
    def kind(self) -> str:
        return self.classification.kind

    @property
    def bounce_recipient(self) -> Party | None:
        bounce = self.classification.bounce
        if self.kind != "bounce" or bounce is None or not bounce.recipient:
            return None
        return _party("Final-Recipient", Address("", bounce.recipient))


def _party(header: str, address: Address) -> Party | None:
    normalized = normalize_email(address.address)
    if normalized is None:
        return None
    return Party(header, address.display_name, normalized.address, normalized.canonical)


def is_no_reply(address: str, patterns: tuple[str, ...]) -> bool:
    """Return True when ``address`` starts with or equals one of ``patterns``."""
    lowered = address.lower()
    return any(lowered.startswith(pattern.lower()) for pattern in patterns)


def _canonical(address: str) -> str | None:
    normalized = normalize_email(address)
    return normalized.canonical if normalized else None


def capture_skip_reason(config: CrmConfig, facts: MessageFacts, msg: ParsedMessage,
                        as_of: dt.datetime) -> str | None:
    """Return why an inbound personal message's sender must not become a lead, or None when it may.

    The first failed rule is the reason: ``internal_sender``, ``own_mailbox``,
    ``no_reply_sender``, ``spam_signals: <signals>`` (see ``spam_signals``),
    ``not_addressed_to_mailbox`` (neither the mailbox nor a
    ``mail.capture.mailbox_aliases`` address is in To or Cc, as with Bcc and
    undisclosed recipients) or ``too_old`` (sent more than
    ``mail.capture.max_age_days`` before ``as_of``).
    """
    capture = config.mail.capture
    sender = facts.sender
    if sender is None:
        return None
    if capture.ignore_internal and sender.canonical.rsplit("@", 1)[-1] in config.organization.internal_domains:
        return "internal_sender"
    if sender.address in config.connected_mailboxes():
        return "own_mailbox"
    if is_no_reply(sender.address, capture.ignore_senders):
        return "no_reply_sender"
    signals = spam_signals(config, facts, msg)
    if signals:
        return "spam_signals: " + ", ".join(signals)
    addressed = {_canonical(address) for address in (facts.mailbox, *capture.mailbox_aliases)} - {None}
    if not addressed & facts.recipients:
        return "not_addressed_to_mailbox"
    if capture.max_age_days is not None and as_of - facts.occurred_at > dt.timedelta(days=capture.max_age_days):
        return "too_old"
    return None


def spam_signals(config: CrmConfig, facts: MessageFacts, msg: ParsedMessage) -> list[str]:
    """Name the structural spam signals of an inbound message; each one alone blocks lead capture.

    - ``no_message_id``, ``no_date``: RFC 5322 requires Date and expects
      Message-ID, and mail clients and submission servers add both, so a
      message without one did not come through a normal mail client.
      A message read through the Gmail API has a date whenever Gmail
      sends a valid internalDate, which replaces a missing Date header.
    - ``freemail_reply_to``: Reply-To is on a ``mail.capture.freemail_domains``
      domain while From is on another domain, so replies go to an address the
      sender does not vouch for (SpamAssassin's FREEMAIL_FORGED_REPLYTO).
      A From that is a no-reply relay is exempt, because web-form relays work that way.
    """
    signals = []
    if not msg.message_id:
        signals.append("no_message_id")
    if msg.date is None:
        signals.append("no_date")
    sender = facts.sender
    if sender is not None and sender.header == "From":
        from_domain = sender.address.rsplit("@", 1)[-1]
        freemail = {domain.lower() for domain in config.mail.capture.freemail_domains}
        for address in msg.reply_to:
            domain = address.address.rsplit("@", 1)[-1].lower()
            if domain in freemail and domain != from_domain:
                signals.append("freemail_reply_to")
                break
    return signals


def _parties(msg: ParsedMessage, mailbox: str, outbound: bool) -> list[Party]:
    groups = [("To", msg.to), ("Cc", msg.cc), ("Bcc", msg.bcc)]
    if not outbound:
        groups = [("From", (msg.from_address,) if msg.from_address else ()), ("Reply-To", msg.reply_to)] + groups
    parties: dict[str, Party] = {}
    for header, addresses in groups:
        for address in addresses:
            party = _party(header, address)
            if party and party.address != mailbox and party.canonical not in parties:
                parties[party.canonical] = party
    return list(parties.values())


def _sender(parties: list[Party], config: CrmConfig) -> Party | None:
    by_header = {party.header: party for party in reversed(parties)}
    sender, reply_to = by_header.get("From"), by_header.get("Reply-To")
    patterns = config.mail.capture.ignore_senders
    if sender is not None and is_no_reply(sender.address, patterns) and reply_to is not None:
        return reply_to
    return sender or reply_to


def _references(msg: ParsedMessage, classification: Classification) -> tuple[str, ...]:
    found = [msg.in_reply_to] if msg.in_reply_to else []
    found += list(reversed(msg.references))
    if classification.bounce and classification.bounce.original_message_id:
        found.append(classification.bounce.original_message_id)
    unique = [item for item in dict.fromkeys(found) if item and item != msg.message_id]
    return tuple(unique[:MAX_REFERENCES])


def message_facts(config: CrmConfig, msg: ParsedMessage, classification: Classification, *, mailbox: str,
                  gmail_id: str, thread_id: str | None, labels: frozenset[str], now: dt.datetime) -> MessageFacts:
    """Collect the facts of one parsed and classified message seen in ``mailbox``."""
    mailbox = mailbox.lower()
    sender_address = msg.from_address.address if msg.from_address else ""
    outbound = "SENT" in labels or sender_address == mailbox
    parties = _parties(msg, mailbox, outbound)
    body = " ".join(msg.body_text.split())
    return MessageFacts(
        mailbox=mailbox,
        gmail_id=gmail_id,
        thread_id=thread_id,
        message_id=msg.message_id,
        direction="outbound" if outbound else "inbound",
        classification=classification,
        parties=tuple(parties),
        sender=None if outbound else _sender(parties, config),
        references=_references(msg, classification),
        occurred_at=msg.date or now,
        subject=msg.subject,
        snippet=body[:MAX_SNIPPET],
        labels=labels,
        capture_event_id=(msg.message_id or gmail_id).strip("<>"),
        recipients=frozenset(_canonical(address.address) for address in (*msg.to, *msg.cc)) - {None},
    )


# ---------------------------------------------------------------------------
# Stored documents about a message
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class MessageSnapshot:
    """Documents the message's transaction read.

    Attributes:
        activity: The activity of this message in this mailbox, if logged.
        own_link: ``message_links`` entry of this message's Message-ID.
        contact_ids: Contact id per canonical address that matched.
        contacts: Matched contact documents by id.
        deal_id: The deal the message belongs to, when one was found.
        deal: That deal's document.
        deal_rule: How the deal was found (``thread``, ``reference``,
            ``outbox``, ``contact``), for the audit.
        link_contact_id: Contact named by a thread or reference link.
        company: The primary contact's company document.
        followups: Scheduled no-reply follow-ups of the primary contact.
        enrolments: Active sequence enrolments of the primary contact.
    """

    activity: dict | None = None
    own_link: dict | None = None
    contact_ids: dict[str, str] = dataclasses.field(default_factory=dict)
    contacts: dict[str, dict] = dataclasses.field(default_factory=dict)
    deal_id: str | None = None
    deal: dict | None = None
    deal_rule: str | None = None
    link_contact_id: str | None = None
    company: dict | None = None
    followups: dict[str, dict] = dataclasses.field(default_factory=dict)
    enrolments: dict[str, dict] = dataclasses.field(default_factory=dict)


def _key_path(party: Party) -> str:
    return f"contact_keys/{ids.key_doc_id('email', party.canonical)}"


def _lookup_parties(facts: MessageFacts) -> list[Party]:
    parties = list(facts.parties)
    if facts.bounce_recipient is not None:
        # A bounce is about the failed recipient, never about the mailer daemon.
        parties = [facts.bounce_recipient]
    return parties


def _outbox_ids(facts: MessageFacts, sender_domain: str) -> list[str]:
    found = []
    for reference in facts.references:
        match = _OUTBOX_MESSAGE_ID.match(reference)
        if match and match.group(2).lower() == sender_domain.lower():
            found.append(match.group(1))
    return found


def _first_round(reader: TransactionReader, facts: MessageFacts, config: CrmConfig,
                 parties: list[Party]) -> dict[str, dict | None]:
    paths = [f"activities/{facts.activity_id}"]
    if facts.message_id:
        paths.append(f"message_links/{message_link_id(facts.message_id)}")
    if facts.thread_id:
        paths.append(f"thread_links/{thread_link_id(facts.mailbox, facts.thread_id)}")
    paths += [f"message_links/{message_link_id(ref)}" for ref in facts.references]
    paths += [f"outbox/{outbox_id}" for outbox_id in _outbox_ids(facts, config.organization.sender_domain)]
    paths += [_key_path(party) for party in parties]
    return reader.get(paths)


def _links(docs: dict[str, dict | None], facts: MessageFacts) -> list[tuple[str, dict]]:
    """Return ``(rule, link)`` for the thread link, then reference links, then outbox records."""
    found = []
    if facts.thread_id:
        link = docs.get(f"thread_links/{thread_link_id(facts.mailbox, facts.thread_id)}")
        if link:
            found.append(("thread", link))
    for ref in facts.references:
        link = docs.get(f"message_links/{message_link_id(ref)}")
        if link:
            found.append(("reference", link))
    found += [("outbox", doc) for path, doc in docs.items() if path.startswith("outbox/") and doc]
    return found


def load_snapshot(reader: TransactionReader, facts: MessageFacts, config: CrmConfig,
                  primary_of: Callable[[MessageFacts, MessageSnapshot], str | None]) -> MessageSnapshot:
    """Read everything the effects of ``facts`` need, inside the caller's transaction.

    Args:
        reader: The transaction's reader.
        facts: The message.
        config: Configuration.
        primary_of: ``(facts, snapshot) -> contact id or None`` that picks the
            contact the message is mostly about.
    """
    snapshot = MessageSnapshot()
    parties = _lookup_parties(facts)

    # 1. The message's own records, its links and the address keys.
    docs = _first_round(reader, facts, config, parties)
    snapshot.activity = docs[f"activities/{facts.activity_id}"]
    if facts.message_id:
        snapshot.own_link = docs[f"message_links/{message_link_id(facts.message_id)}"]
    if snapshot.activity is not None:
        return snapshot
    for party in parties:
        key = docs.get(_key_path(party))
        if key and key.get("contact_id"):
            snapshot.contact_ids[party.canonical] = key["contact_id"]
    links = _links(docs, facts)

    # 2. Contacts, and the leads behind outbox records.
    lead_paths = [f"leads/{link['lead_id']}" for rule, link in links if rule == "outbox" and link.get("lead_id")]
    for rule, link in links:
        if link.get("contact_id") and snapshot.link_contact_id is None:
            snapshot.link_contact_id = link["contact_id"]
    contact_ids = set(snapshot.contact_ids.values()) | ({snapshot.link_contact_id} - {None})
    second = reader.get([f"contacts/{cid}" for cid in sorted(contact_ids)] + lead_paths)
    snapshot.contacts = {path.split("/", 1)[1]: doc for path, doc in second.items()
                         if path.startswith("contacts/") and doc}
    leads = [doc for path, doc in second.items() if path.startswith("leads/") and doc]
    if snapshot.link_contact_id is None and leads:
        snapshot.link_contact_id = leads[0].get("contact_id")

    # 3. The deal and the company.
    _choose_deal(snapshot, links, leads, primary_of(facts, snapshot))
    primary = primary_of(facts, snapshot)
    company_id = (snapshot.contacts.get(primary) or {}).get("company_id") if primary else None
    third = reader.get(([f"deals/{snapshot.deal_id}"] if snapshot.deal_id else [])
                       + ([f"companies/{company_id}"] if company_id else []))
    snapshot.deal = third.get(f"deals/{snapshot.deal_id}") if snapshot.deal_id else None
    if snapshot.deal_id and snapshot.deal is None:
        snapshot.deal_id = snapshot.deal_rule = None
    snapshot.company = third.get(f"companies/{company_id}") if company_id else None

    # 4. Follow-ups and enrolments that a reply or a bounce stops.
    if primary and facts.direction == "inbound" and facts.kind in ("personal", "bounce"):
        snapshot.followups = reader.where("followups", {"contact_id": primary, "status": "scheduled"})
        snapshot.enrolments = reader.where("enrolments", {"contact_id": primary, "status": "active"})
    return snapshot


def _choose_deal(snapshot: MessageSnapshot, links: list[tuple[str, dict]], leads: list[dict],
                 primary: str | None) -> None:
    for rule, link in links:
        if link.get("deal_id"):
            snapshot.deal_id, snapshot.deal_rule = link["deal_id"], rule
            return
    for lead in leads:
        if lead.get("deal_id"):
            snapshot.deal_id, snapshot.deal_rule = lead["deal_id"], "outbox"
            return
    contact = snapshot.contacts.get(primary) if primary else None
    if contact and contact.get("open_deal_id"):
        snapshot.deal_id, snapshot.deal_rule = contact["open_deal_id"], "contact"

