"""The lead-intake use case: one submission in, one consistent set of records out."""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable

from lib.config.schema import CrmConfig
from lib.domain.clock import Clock
from lib.domain.routing import MemberLoad
from lib.intake.types import Submission
from lib.logs import mask_email
from lib.services.intake_decide import IntakeDecision, IntakeResult, IntakeSnapshot, decide
from lib.services.intake_prepare import PreparedLead, prepare

logger = logging.getLogger(__name__)


Reader = Callable[[list[str]], dict[str, dict | None]]


def _load(doc: dict | None) -> MemberLoad:
    if not doc:
        return MemberLoad()
    return MemberLoad(int(doc.get("open_leads", 0)), int(doc.get("assigned_total", 0)), doc.get("last_assigned_at"))


def load_snapshot(read: Reader, prepared: PreparedLead) -> IntakeSnapshot:
    """Read what the intake decision needs through ``read`` (path list → documents).

    A new lead needs one call of ``read``. Only a contact found through another
    identity key than its own, or a contact with an open deal, costs another call.
    """
    # 1. One batched read of everything a new lead needs.
    paths = [f"events/{doc_id}" for doc_id in prepared.event_doc_ids]
    paths += [f"contact_keys/{key}" for key in prepared.identity_keys]
    paths.append(f"contacts/{prepared.contact_id}")
    paths += [f"member_state/{member_id}" for member_id in prepared.candidate_ids]
    if prepared.company_id:
        paths.append(f"companies/{prepared.company_id}")
    docs = read(list(dict.fromkeys(paths)))

    # 2. The contact the identity keys point to: email first, then phone.
    matched_key = next((key for key in prepared.identity_keys if docs.get(f"contact_keys/{key}")), None)
    contact_id = docs[f"contact_keys/{matched_key}"]["contact_id"] if matched_key else None
    contact = None
    if contact_id:
        contact_path = f"contacts/{contact_id}"
        contact = docs[contact_path] if contact_path in docs else read([contact_path])[contact_path]
    if contact and prepared.email and matched_key.startswith("phone:") and contact.get("emails"):
        # An office line is shared by colleagues: a phone alone never merges two
        # people who gave different email addresses.
        contact_id, contact = None, None

    # 3. The contact's open deal, if it has one.
    deal = None
    if contact and contact.get("open_deal_id"):
        deal_path = f"deals/{contact['open_deal_id']}"
        deal = read([deal_path])[deal_path]

    return IntakeSnapshot(
        events={doc_id: docs[f"events/{doc_id}"] for doc_id in prepared.event_doc_ids},
        keys={key: docs[f"contact_keys/{key}"] for key in prepared.identity_keys},
        contact_id=contact_id,
        contact=contact,
        loads={member_id: _load(docs[f"member_state/{member_id}"]) for member_id in prepared.candidate_ids},
        company=docs.get(f"companies/{prepared.company_id}") if prepared.company_id else None,
        deal=deal,
    )


class IntakeStore(abc.ABC):
    @abc.abstractmethod
    def commit_intake(
        self, prepared: PreparedLead, decide_writes: Callable[[IntakeSnapshot], IntakeDecision]
    ) -> IntakeResult:
        """Read what ``prepared`` needs, call ``decide_writes`` and apply its writes atomically.

        The store may call ``decide_writes`` more than once when a transaction is
        retried; only the last call's writes are applied.
        """


class IntakeService:
    def __init__(self, config: CrmConfig, store: IntakeStore, clock: Clock):
        self._config = config
        self._store = store
        self._clock = clock

    def handle(self, submission: Submission) -> IntakeResult:
        """Run one submission through normalise, dedupe, score, route, qualify, act and audit.

        Returns:
            What happened: ``created``, ``matched`` (an open lead of the same
            contact), ``updated`` (an edited form response), ``duplicate`` or
            ``empty`` (every answer blank, nothing written).
        """
        if submission.is_empty():
            logger.info("empty submission ignored", extra={"source_id": submission.source_id,
                                                           "event_id": submission.event_id})
            return IntakeResult("empty", False)

        now = self._clock.now()
        prepared = prepare(self._config, submission, now)
        result = self._store.commit_intake(prepared, lambda snapshot: decide(self._config, prepared, snapshot, now))

        logger.info(
            "intake %s", result.status,
            extra={"source_id": submission.source_id, "event_key": prepared.event_key,
                   "contact_id": result.contact_id, "lead_id": result.lead_id, "deal_id": result.deal_id,
                   "owner_id": result.owner_id, "duplicate": result.duplicate,
                   "email": mask_email(prepared.email.address if prepared.email else None)},
        )
        return result
