"""Gmail watch renewal: expiration and cursor stored, admins alerted once per mailbox per day."""

from __future__ import annotations

import datetime as dt

from lib.adapters.memory_mail import MemoryMailStore
from lib.domain.clock import FixedClock
from lib.errors import TransientError
from lib.services.mail_watch import WatchRenewer
from tests.unit.mail_sync_support import MAILBOX, NOW, mail_config


class FakeWatcher:
    def __init__(self, expires_in: dt.timedelta = dt.timedelta(days=7), fail: bool = False):
        self.expires_in = expires_in
        self.fail = fail
        self.topics: list[str] = []

    def watch(self, user: str, topic: str) -> tuple[int, dt.datetime]:
        self.topics.append(topic)
        if self.fail:
            raise TransientError("Gmail returned HTTP 503")
        return 5000, NOW + self.expires_in


def renewer(watcher: FakeWatcher) -> tuple[WatchRenewer, MemoryMailStore]:
    store = MemoryMailStore()
    return WatchRenewer(mail_config(), store, watcher, FixedClock(NOW), "crm-demo"), store


def test_watch_stores_expiration_and_missing_cursor():
    watcher = FakeWatcher()
    service, store = renewer(watcher)

    [result] = service.renew_all()

    doc = store.get(f"mailboxes/{MAILBOX}")
    assert result.ok
    assert doc["history_id"] == 5000
    assert doc["watch_expiration"] == NOW + dt.timedelta(days=7)
    assert watcher.topics == ["projects/crm-demo/topics/crm-gmail-push"]


def test_watch_never_moves_stored_cursor():
    service, store = renewer(FakeWatcher())
    store.put(f"mailboxes/{MAILBOX}", {"history_id": 9000})

    service.renew_all()

    assert store.get(f"mailboxes/{MAILBOX}")["history_id"] == 9000


def test_failed_renewal_alerts_admins_once_a_day():
    service, store = renewer(FakeWatcher(fail=True))

    [first] = service.renew_all()
    [second] = service.renew_all()

    alerts = store.docs("outbox")
    assert not first.ok
    assert first.alerted
    assert not second.alerted
    assert len(alerts) == 1
    record = next(iter(alerts.values()))
    assert record["email"]["to"] == ["admin.lee@example-crm.tw"]
    assert record["email"]["subject"].startswith("Gmail 同步需要處理")


def test_expiration_within_a_day_alerts():
    service, store = renewer(FakeWatcher(expires_in=dt.timedelta(hours=3)))

    [result] = service.renew_all()

    assert not result.ok
    assert result.alerted
    assert store.get(f"mailboxes/{MAILBOX}")["watch_expiration"] == NOW + dt.timedelta(hours=3)
