"""The lead-intake use case: one submission in, one consistent set of records out."""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable

from lib.config.schema import CrmConfig
from lib.domain.clock import Clock
from lib.intake.types import Submission
from lib.logs import mask_email
from lib.services.intake_decide import IntakeDecision, IntakeResult, IntakeSnapshot, decide
from lib.services.intake_prepare import PreparedLead, prepare

logger = logging.getLogger(__name__)


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
