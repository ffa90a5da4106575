"""Integration tests of the CSV importer against the Firestore emulator."""

from __future__ import annotations

import csv
import datetime as dt
import os
from pathlib import Path

import pytest
from google.cloud import firestore

from lib.adapters.firestore_import import write_plan
from lib.config.loader import load_config
from lib.importer import run_import
from lib.importer.parse import EXPORT_COLUMNS, PIPELINE, parse_export

EXPORT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "crm-sales-opportunities"
NOW = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.timezone.utc)
LATER = NOW + dt.timedelta(days=1)
# The sample's sales_teams.csv names 6 managers, and each gets a member document.
SAMPLE_MANAGERS = 6

STAGE_SETTINGS = {
    "stage_limits": {"new": 3, "contacted": 7, "won": None, "lost": None},
    "win_probabilities": {"new": 0.1, "contacted": 0.2, "won": 1.0, "lost": 0.0},
    "stage_status": {"new": "open", "contacted": "open", "won": "won", "lost": "lost"},
}


@pytest.fixture
def client(clean_firestore: str) -> firestore.Client:
    return firestore.Client(project=os.environ["GOOGLE_CLOUD_PROJECT"])


def opportunity_ids(folder: Path) -> list[str]:
    with (folder / PIPELINE).open(encoding="utf-8", newline="") as handle:
        return [row["opportunity_id"] for row in csv.DictReader(handle)]


def existing_deal_ids(client: firestore.Client, ids: list[str]) -> set[str]:
    references = [client.collection("deals").document(f"imp-{id_}") for id_ in ids]
    found: set[str] = set()
    for start in range(0, len(references), 500):
        found |= {snapshot.id for snapshot in client.get_all(references[start : start + 500], field_paths=["external_id"]) if snapshot.exists}
    return found


def test_real_export_loads_or_reports_every_row(client, tmp_path):
    if not EXPORT.is_dir():
        pytest.skip(f"export folder not found at {EXPORT}: the shared data folder is laid next to the repository")
    config = load_config()

    first = run_import(EXPORT, config, client, NOW, tmp_path / "first.csv")
    ids = opportunity_ids(EXPORT)
    loaded = existing_deal_ids(client, ids)
    reported = {line.record_id for line in first.report if line.file == PIPELINE}
    assert len(ids) == 8800
    assert [id_ for id_ in ids if f"imp-{id_}" not in loaded and id_ not in reported] == []
    assert len(loaded) == first.files[PIPELINE]["loaded"]
    rejected = {line.record_id for line in first.report if line.level == "error" and not line.code.startswith("duplicate_")}
    assert {f"imp-{id_}" for id_ in rejected} & loaded == set()
    assert first.written == sum(counts["loaded"] for counts in first.files.values()) + SAMPLE_MANAGERS

    second = run_import(EXPORT, config, client, LATER, tmp_path / "second.csv")
    assert second.written == 0
    assert second.history_written == 0
    assert second.unchanged == first.written
    assert second.report == first.report
    assert (tmp_path / "second.csv").read_bytes() == (tmp_path / "first.csv").read_bytes()

    deal = client.collection("deals").document("imp-1C1I7A6R").get().to_dict()
    assert deal["imported_at"] == NOW
    assert deal["closed_at"] == dt.datetime(2017, 3, 1, tzinfo=dt.timezone.utc)
    history = [snapshot.to_dict() for snapshot in client.collection("deals/imp-1C1I7A6R/stage_history").order_by("__name__").stream()]
    assert [entry["stage_id"] for entry in history] == ["contacted", "won"]
    company = client.collection("companies").document("co-bioholding").get().to_dict()
    assert (company["country"], company["updated_at"]) == ("Philippines", NOW)


def write_small_export(folder: Path, stage: str, close_date: str, close_value: str) -> Path:
    tables = {
        "accounts.csv": [["Acme Corporation", "technology", "1996", "1100.04", "2822", "United States", ""]],
        "products.csv": [["GTX Basic", "GTX", "550"]],
        "sales_teams.csv": [["Ada Lovell", "Dora Brandt", "Central"]],
        PIPELINE: [["OPP1", "Ada Lovell", "GTX Basic", "Acme Corporation", stage, "10/20/2016", close_date, close_value]],
    }
    for name, rows in tables.items():
        with (folder / name).open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(EXPORT_COLUMNS[name])
            writer.writerows(rows)
    return folder


def test_changed_deal_rewrites_only_that_deal(client, tmp_path):
    won = parse_export(write_small_export(tmp_path, "Won", "3/1/2017", "588"), **STAGE_SETTINGS)
    engaging = parse_export(write_small_export(tmp_path, "Engaging", "", ""), **STAGE_SETTINGS)

    write_plan(client, won, now=NOW)
    stats = write_plan(client, engaging, now=LATER)

    assert (stats.written, stats.unchanged, stats.history_deleted) == (1, 4, 1)
    deal = client.document("deals/imp-OPP1").get().to_dict()
    assert (deal["stage_id"], deal["imported_at"]) == ("contacted", LATER)
    history = [snapshot.id for snapshot in client.collection("deals/imp-OPP1/stage_history").list_documents()]
    assert history == ["00"]
    assert client.document("companies/co-acme-corporation").get().to_dict()["updated_at"] == NOW


def test_document_not_created_by_import_is_kept(client, tmp_path):
    plan = parse_export(write_small_export(tmp_path, "Won", "3/1/2017", "588"), **STAGE_SETTINGS)
    client.document("companies/co-acme-corporation").set({"name": "Acme Corporation", "domain": "acme.example"})

    stats = write_plan(client, plan, now=NOW)

    assert stats.kept_foreign == 1
    assert client.document("companies/co-acme-corporation").get().to_dict()["domain"] == "acme.example"
