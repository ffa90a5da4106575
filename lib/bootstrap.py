"""Composition root: builds the services from configuration and the environment once per process.

Environment:
    CRM_CONFIG: configuration file (default: the sample ``config/crm.yaml``).
    GOOGLE_CLOUD_PROJECT: project id (default ``crm-local``).
    CRM_MAIL_ADAPTER: ``gmail`` sends through the Gmail API; ``file`` (default)
        writes ``.eml`` files to ``CRM_OUTBOX_DIR`` (default ``out/outbox``).
    CRM_TASKS_LOCATION: Cloud Tasks location (default ``asia-east1``).
    CRM_FUNCTION_BASE_URL: base URL of the deployed functions, for task targets.
    CRM_TASKS_SERVICE_ACCOUNT: service account whose OIDC token signs task calls.
    CRM_CHAT_ADAPTER: ``webhook`` posts to Google Chat incoming webhooks; ``file``
        (default) writes each card as JSON under ``<CRM_OUTBOX_DIR>/chat``.
    CRM_UNSUBSCRIBE_KEY: HMAC key of the unsubscribe links (at least 16 bytes).
    CRM_PUBLIC_BASE_URL: public base URL of the ``unsubscribe`` function
        (default: CRM_FUNCTION_BASE_URL).
    CRM_GMAIL_ADAPTER: ``gmail`` (default) reads connected mailboxes through the
        Gmail API; ``replay:<folder>`` serves recorded responses (local runs only).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path

from lib.adapters.cloud_tasks import CloudTasksScheduler
from lib.adapters.firestore_followups import FirestoreDocStore
from lib.adapters.firestore_mail import FirestoreMailStore
from lib.adapters.firestore_store import FirestoreIntakeStore, FirestoreOutboxStore, make_client
from lib.config.loader import cached_config
from lib.config.schema import CrmConfig
from lib.domain.clock import Clock, SystemClock
from lib.ports import ChatNotifier, MailSender
from lib.services.dispatch import Dispatcher, DispatchSettings, contact_suppression
from lib.services.followup import FollowupService
from lib.services.intake import IntakeService
from lib.services.mail_sync import MailSyncService
from lib.services.mail_watch import WatchRenewer
from lib.services.sequences import SequenceService, SequenceSettings
from lib.services.stale import StaleService

DEFAULT_OUTBOX_DIR = Path("out") / "outbox"


@dataclasses.dataclass(frozen=True)
class App:
    config: CrmConfig
    project: str
    intake: IntakeService
    dispatcher: Dispatcher
    clock: Clock
    followups: FollowupService | None = None
    stale: StaleService | None = None
    sequences: SequenceService | None = None
    mail_sync: MailSyncService | None = None
    watch_renewer: WatchRenewer | None = None


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


def chat_notifier() -> ChatNotifier:
    """Build the Google Chat adapter that ``CRM_CHAT_ADAPTER`` names."""
    from lib.adapters.chat_webhook import FileChatNotifier, WebhookChatNotifier

    adapter = os.environ.get("CRM_CHAT_ADAPTER", "file")
    if adapter == "webhook":
        return WebhookChatNotifier()
    if adapter == "file":
        return FileChatNotifier(Path(os.environ.get("CRM_OUTBOX_DIR", DEFAULT_OUTBOX_DIR)) / "chat")
    raise ValueError(f"CRM_CHAT_ADAPTER={adapter!r} is not supported; use 'webhook' or 'file'")


def sequence_settings() -> SequenceSettings:
    """Read the unsubscribe URL and key of the sequences from the environment."""
    base = os.environ.get("CRM_PUBLIC_BASE_URL") or os.environ.get("CRM_FUNCTION_BASE_URL", "http://127.0.0.1:8080")
    key = os.environ.get("CRM_UNSUBSCRIBE_KEY", "")
    return SequenceSettings(f"{base.rstrip('/')}/unsubscribe", key.encode("utf-8") or None)


def gmail_client():
    """Build the Gmail reading client that ``CRM_GMAIL_ADAPTER`` names."""
    from lib.adapters.gmail_api import SYNC_SCOPES, GmailClient, service_factory

    adapter = os.environ.get("CRM_GMAIL_ADAPTER", "gmail")
    if adapter == "gmail":
        return GmailClient(service_factory(SYNC_SCOPES))
    if adapter.startswith("replay:"):
        from lib.adapters.gmail_replay import replay_service_factory

        return GmailClient(replay_service_factory(Path(adapter.removeprefix("replay:"))))
    raise ValueError(f"CRM_GMAIL_ADAPTER={adapter!r} is not supported; use 'gmail' or 'replay:<folder>'")


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
    suppression = contact_suppression(lambda contact_id: client.document(f"contacts/{contact_id}").get().to_dict())
    dispatcher = Dispatcher(FirestoreOutboxStore(client), mail_sender(), tasks, clock, settings, chat_notifier(),
                            suppression)
    docs = FirestoreDocStore(client)
    intake = IntakeService(config, FirestoreIntakeStore(client), clock)
    mail_store, gmail = FirestoreMailStore(client), gmail_client()
    return App(config, project, intake, dispatcher, clock,
               followups=FollowupService(config, docs, clock), stale=StaleService(config, docs, clock),
               sequences=SequenceService(config, docs, clock, sequence_settings()),
               mail_sync=MailSyncService(config, mail_store, gmail, intake, clock),
               watch_renewer=WatchRenewer(config, mail_store, gmail, clock, project))
