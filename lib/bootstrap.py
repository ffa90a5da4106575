"""Composition root: builds the services from configuration and the environment once per process.

Environment:
    CRM_CONFIG: configuration file (default: the sample ``config/crm.yaml``).
    GOOGLE_CLOUD_PROJECT: project id (default ``crm-local``).
    CRM_MAIL_ADAPTER: ``gmail`` sends through the Gmail API; ``file`` (default)
        writes ``.eml`` files to ``CRM_OUTBOX_DIR`` (default ``out/outbox``).
    CRM_TASKS_LOCATION: Cloud Tasks location (default ``asia-east1``).
    CRM_FUNCTION_BASE_URL: base URL of the deployed functions, for task targets.
    CRM_TASKS_SERVICE_ACCOUNT: service account whose OIDC token signs task calls.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path

from lib.adapters.cloud_tasks import CloudTasksScheduler
from lib.adapters.firestore_store import FirestoreIntakeStore, FirestoreOutboxStore, make_client
from lib.config.loader import cached_config
from lib.config.schema import CrmConfig
from lib.domain.clock import Clock, SystemClock
from lib.ports import MailSender
from lib.services.dispatch import Dispatcher, DispatchSettings
from lib.services.intake import IntakeService

DEFAULT_OUTBOX_DIR = Path("out") / "outbox"


@dataclasses.dataclass(frozen=True)
class App:
    config: CrmConfig
    project: str
    intake: IntakeService
    dispatcher: Dispatcher
    clock: Clock


def mail_sender() -> MailSender:
    """Build the mail adapter that ``CRM_MAIL_ADAPTER`` names."""
    adapter = os.environ.get("CRM_MAIL_ADAPTER", "file")
    if adapter == "gmail":
        from lib.adapters.gmail_api import SEND_SCOPES, GmailClient, GmailSender, service_factory

        return GmailSender(GmailClient(service_factory(SEND_SCOPES)))
    if adapter == "file":
        from lib.adapters.mail_files import EmlFileSender

        return EmlFileSender(Path(os.environ.get("CRM_OUTBOX_DIR", DEFAULT_OUTBOX_DIR)))
    raise ValueError(f"CRM_MAIL_ADAPTER={adapter!r} is not supported; use 'gmail' or 'file'")


@functools.lru_cache(maxsize=1)
def app() -> App:
    """Build the application once; warm function instances reuse it."""
    config = cached_config(os.environ.get("CRM_CONFIG"))
    project = os.environ.get("GOOGLE_CLOUD_PROJECT", "crm-local")
    client = make_client(project)
    clock = SystemClock()
    settings = DispatchSettings(
        function_base_url=os.environ.get("CRM_FUNCTION_BASE_URL", "http://127.0.0.1:8080"),
        tasks_service_account=os.environ.get("CRM_TASKS_SERVICE_ACCOUNT") or None,
    )
    tasks = CloudTasksScheduler(project, os.environ.get("CRM_TASKS_LOCATION", "asia-east1"))
    dispatcher = Dispatcher(FirestoreOutboxStore(client), mail_sender(), tasks, clock, settings)
    return App(config, project, IntakeService(config, FirestoreIntakeStore(client), clock), dispatcher, clock)
