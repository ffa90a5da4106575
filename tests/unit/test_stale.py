"""The daily stale-deal check: which deals, whom to tell, once a day."""

import datetime as dt
import zoneinfo

import pytest

from lib.adapters.memory_docs import MemoryDocStore
from lib.config.loader import load_config
from lib.domain.clock import FixedClock
from lib.services.stale import StaleService, is_stale

CONFIG = load_config()
TAIPEI = zoneinfo.ZoneInfo("Asia/Taipei")
RUN = dt.datetime(2026, 3, 10, 8, 0, tzinfo=TAIPEI)
UTC = dt.timezone.utc


def deal(owner, stale_due_at, status="open", next_activity_at=None, stage="contacted"):
    return {"name": f"deal of {owner}", "owner_id": owner, "stage_id": stage, "status": status,
            "last_activity_at": stale_due_at - dt.timedelta(days=7) if stale_due_at else None,
            "stale_due_at": stale_due_at, "next_activity_at": next_activity_at}


@pytest.fixture
def docs():
    store = MemoryDocStore()
    past, future = RUN - dt.timedelta(days=1), RUN + dt.timedelta(days=1)
    seeds = {
        "dl-stale": deal("rep-wang", past),
        "dl-due-now": deal("rep-lin", RUN),
        "dl-next-step": deal("rep-wang", past, next_activity_at=future),
        "dl-old-next-step": deal("rep-wang", past, next_activity_at=past),
        "dl-fresh": deal("rep-wang", future),
        "dl-won": deal("rep-wang", past, status="won"),
        "dl-no-limit": deal("rep-wang", None),
        "imp-A1": deal("agent-1", past),
        "imp-A2": deal("agent-2", past),
    }
    for deal_id, fields in seeds.items():
        store.memory.put(f"deals/{deal_id}", fields)
    store.memory.put("members/agent-1", {"name": "Agent One", "manager_id": "boss-1", "email": "agent.one@example.com"})
    store.memory.put("members/agent-2", {"name": "Agent Two", "manager_id": "boss-1"})
    store.memory.put("members/boss-1", {"name": "Boss", "email": "boss@example.com", "locale": "en"})
    return store


@pytest.fixture
def clock():
    return FixedClock(RUN + dt.timedelta(minutes=3))


def test_is_stale_rules():
    at = RUN.astimezone(UTC)
    assert is_stale(deal("a", at), at)
    assert not is_stale(deal("a", at + dt.timedelta(seconds=1)), at)
    assert not is_stale(deal("a", at, next_activity_at=at + dt.timedelta(hours=1)), at)
    assert is_stale(deal("a", at, next_activity_at=at - dt.timedelta(hours=1)), at)
    assert not is_stale(deal("a", at, status="lost"), at)


def test_flags_only_stale_deals(docs, clock):
    run = StaleService(CONFIG, docs, clock).run(RUN)
    assert sorted(run.flagged) == ["dl-due-now", "dl-old-next-step", "dl-stale", "imp-A1", "imp-A2"]


def test_one_digest_per_owner_and_manager(docs, clock):
    run = StaleService(CONFIG, docs, clock).run(RUN)

    assert run.digests == {name: "created" for name in ("agent-1", "agent-2", "boss-1", "mgr-chen", "rep-lin", "rep-wang")}
    manager = docs.memory.get("digests/dg-stale-deals-2026-03-10-mgr-chen")
    assert manager["team_count"] == 3
    assert manager["own_count"] == 0
    boss = docs.memory.get("outbox/ob-dg-stale-deals-2026-03-10-boss-1-email")
    assert boss["email"]["subject"] == "Stale deals digest (2026-03-10): 2"
    assert "Your team's deals (2):" in boss["email"]["text_body"]
    wang = docs.memory.get("outbox/ob-dg-stale-deals-2026-03-10-rep-wang-email")
    assert wang["email"]["subject"] == "停滯商機摘要（2026-03-10）：2 筆"
    # An imported member without an email gets a digest record and tasks, but no message.
    assert docs.memory.get("outbox/ob-dg-stale-deals-2026-03-10-agent-2-email") is None
    assert docs.memory.get("digests/dg-stale-deals-2026-03-10-agent-2")["status"] == "complete"


def test_one_task_per_stale_deal(docs, clock):
    run = StaleService(CONFIG, docs, clock).run(RUN)

    tasks = docs.memory.docs("tasks")
    assert run.tasks_created == 5
    assert sorted(tasks) == sorted(f"tk-stale-{deal_id}-2026-03-10" for deal_id in run.flagged)
    assert tasks["tk-stale-imp-A2-2026-03-10"]["owner_id"] == "agent-2"


def test_repeated_run_sends_nothing_twice(docs, clock):
    service = StaleService(CONFIG, docs, clock)
    service.run(RUN)
    paths = docs.memory.paths()
    clock.advance(dt.timedelta(minutes=10))

    again = service.run(RUN)

    assert set(again.digests.values()) == {"already_sent"}
    assert again.tasks_created == 0
    assert docs.memory.paths() == paths


def test_next_day_sends_new_digest(docs, clock):
    service = StaleService(CONFIG, docs, clock)
    service.run(RUN)
    next_day = service.run(RUN + dt.timedelta(days=1))
    assert next_day.run_date == dt.date(2026, 3, 11)
    assert set(next_day.digests.values()) == {"created"}
    assert docs.memory.get("outbox/ob-dg-stale-deals-2026-03-11-rep-wang-email") is not None


def test_interrupted_task_writes_resume(docs, clock):
    service = StaleService(CONFIG, docs, clock)
    service.run(RUN)
    path = "digests/dg-stale-deals-2026-03-10-rep-wang"
    docs.memory.put(path, docs.memory.get(path) | {"status": "writing_tasks"})
    lost = "tasks/tk-stale-dl-stale-2026-03-10"
    docs.memory.put(lost, {})
    docs.memory._docs.pop(lost)

    again = service.run(RUN)

    assert again.tasks_created == 1
    assert docs.memory.get(lost)["deal_id"] == "dl-stale"
    assert docs.memory.get(path)["status"] == "complete"


def test_reads_track_stale_count(docs, clock):
    run = StaleService(CONFIG, docs, clock).run(RUN)
    members, digests = 3, 6
    # The query returns the stale deals and one open deal whose next step is still ahead.
    assert run.reads == len(run.flagged) + 1 + members + digests
