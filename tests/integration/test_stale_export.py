"""The stale-deal check on the real CRM export, against an expectation computed from the CSV."""

from __future__ import annotations

import csv
import datetime as dt
import os
from pathlib import Path

import pytest
from google.cloud import firestore

from lib.adapters.firestore_followups import FirestoreDocStore
from lib.config.loader import load_config
from lib.domain.clock import FixedClock
from lib.importer import run_import
from lib.services.stale import StaleService

EXPORT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "crm-sales-opportunities"
IMPORTED_AT = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.timezone.utc)
# Mid-2017: some engaged deals are past their limit and some are not yet.
RUN_AT = dt.datetime(2017, 7, 1, 0, 0, tzinfo=dt.timezone.utc)
EXPORT_STAGES = {"Prospecting": "new", "Engaging": "contacted"}


def expected_stale(config, rejected: set[str]) -> set[str]:
    """Open deals whose engage date plus the stage's limit is at or before RUN_AT, read straight from the CSV."""
    expected = set()
    with (EXPORT / "sales_pipeline.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            stage_id = EXPORT_STAGES.get(row["deal_stage"].strip())
            if stage_id is None or not row["engage_date"] or row["opportunity_id"] in rejected:
                continue
            engaged = dt.datetime.strptime(row["engage_date"], "%m/%d/%Y").replace(tzinfo=dt.timezone.utc)
            limit = config.pipeline.stage(stage_id).stale_after_days
            if engaged + dt.timedelta(days=limit) <= RUN_AT:
                expected.add(f"imp-{row['opportunity_id']}")
    return expected


@pytest.fixture
def client(clean_firestore: str) -> firestore.Client:
    return firestore.Client(project=os.environ["GOOGLE_CLOUD_PROJECT"])


def test_export_flags_exactly_the_stale_deals(client):
    if not EXPORT.is_dir():
        pytest.skip(f"export folder not found at {EXPORT}: the shared data folder is laid next to the repository")
    config = load_config()
    summary = run_import(EXPORT, config, client, IMPORTED_AT)
    rejected = {line.record_id for line in summary.report if line.file == "sales_pipeline.csv" and line.level == "error"}
    expected = expected_stale(config, rejected)
    docs = FirestoreDocStore(client)

    run = StaleService(config, docs, FixedClock(IMPORTED_AT)).run(RUN_AT)

    assert 0 < len(expected) < 1589
    assert set(run.flagged) == expected
    # Reads: the stale deals, the 35 agent and manager documents at most, one digest per recipient.
    assert run.reads <= len(expected) + 2 * len(run.digests) + 35
    owners = {task.to_dict()["owner_id"] for task in client.collection("tasks").stream()}
    assert set(run.digests) >= owners
    members = {doc.id: doc.to_dict() for doc in client.collection("members").stream()}
    managers = {members[owner].get("manager_id") for owner in owners} - {None}
    assert managers
    assert managers <= set(run.digests)
    assert sum(1 for _ in client.collection("tasks").stream()) == len(expected)
