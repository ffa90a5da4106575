"""Stale-check benchmark: document reads for a small and a large deal collection with the same stale deals.

Synthetic deals are written to the Firestore emulator in batches of 500; a
fixed number of them are stale. Reads are counted as Firestore bills them:
documents returned by the query plus documents requested by gets. The check
should read about the stale count plus a constant (members and digests), for
any collection size.

Run: ``python -m benchmarks.stale_reads [--small N] [--large N] [--stale N]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import time

from lib.devstack.emulators import FirestoreEmulator, reset_firestore

PROJECT = "crm-bench"
RUN_AT = dt.datetime(2026, 3, 10, 0, 0, tzinfo=dt.timezone.utc)
OWNERS = ("rep-wang", "rep-lin", "rep-huang", "rep-tsai", "rep-kuo")
BATCH = 500


def _deal(index: int, stale: bool) -> dict:
    due = RUN_AT - dt.timedelta(days=1) if stale else RUN_AT + dt.timedelta(days=1 + index % 30)
    return {"name": f"Bench deal {index}", "owner_id": OWNERS[index % len(OWNERS)], "stage_id": "contacted",
            "status": "open" if index % 4 else "won", "stale_due_at": due if index % 4 or stale else None,
            "last_activity_at": due - dt.timedelta(days=7), "next_activity_at": None}


def _write_deals(client, total: int, stale: int) -> float:
    """Write ``total`` deals, the first ``stale`` of them open and stale; return seconds taken."""
    started = time.perf_counter()
    for start in range(0, total, BATCH):
        batch = client.batch()
        for index in range(start, min(start + BATCH, total)):
            is_stale = index < stale
            fields = _deal(index, is_stale) | ({"status": "open"} if is_stale else {})
            batch.set(client.document(f"deals/bench-{index:06d}"), fields)
        batch.commit()
    return time.perf_counter() - started


def _measure(client, host: str, total: int, stale: int) -> dict:
    from lib.adapters.firestore_followups import FirestoreDocStore
    from lib.config.loader import load_config
    from lib.domain.clock import FixedClock
    from lib.services.stale import StaleService

    reset_firestore(host, PROJECT)
    write_seconds = _write_deals(client, total, stale)
    docs = FirestoreDocStore(client)
    started = time.perf_counter()
    run = StaleService(load_config(), docs, FixedClock(RUN_AT)).run(RUN_AT)
    return {"deals": total, "stale": len(run.flagged), "reads": run.reads, "digests": len(run.digests),
            "reads_over_stale": round(run.reads / max(len(run.flagged), 1), 3),
            "check_seconds": round(time.perf_counter() - started, 2), "write_seconds": round(write_seconds, 1)}


def run(small: int = 8_800, large: int = 100_000, stale: int = 400) -> dict:
    """Measure both sizes and return the figures as a dict."""
    with FirestoreEmulator(PROJECT) as emulator:
        os.environ.update(emulator.env() | {"GOOGLE_CLOUD_PROJECT": PROJECT})
        from google.cloud import firestore

        logging.getLogger().setLevel(logging.ERROR)
        client = firestore.Client(project=PROJECT)
        results = [_measure(client, emulator.host, size, stale) for size in (small, large)]
    return {"runs": results, "reads_growth": results[1]["reads"] - results[0]["reads"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=8_800, help="deals in the small collection (default 8800)")
    parser.add_argument("--large", type=int, default=100_000, help="deals in the large collection (default 100000)")
    parser.add_argument("--stale", type=int, default=400, help="stale deals in both collections (default 400)")
    args = parser.parse_args()
    print(json.dumps(run(args.small, args.large, args.stale), indent=2))


if __name__ == "__main__":
    main()
