"""Dispatcher benchmark: outbox emails sent per second with the file mail adapter.

The rate is reported as a ratio to a transactional write of one document,
measured in the same run against the same Firestore emulator, so the figure
does not depend on how fast this machine or the emulator is.

Run: ``python -m benchmarks.dispatch_rate [--messages N]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.intake import _baseline_writes
from lib.devstack.emulators import FirestoreEmulator

PROJECT = "crm-bench"
BATCH = 500


def _seed(client, count: int, now: dt.datetime) -> None:
    for start in range(0, count, BATCH):
        batch = client.batch()
        for index in range(start, min(start + BATCH, count)):
            outbox_id = f"ob-bench-{index:06d}"
            batch.set(client.document(f"outbox/{outbox_id}"), {
                "kind": "email", "purpose": "bench", "status": "pending", "attempts": 0, "not_before": now,
                "created_at": now, "email": {
                    "sender": "mei.wang@example-crm.tw", "sender_name": "王小美", "to": [f"lead{index}@example.com"],
                    "subject": f"測試 {index}", "text_body": "您好，這是測試郵件。\n",
                    "message_id": f"<{outbox_id}@example-crm.tw>"}})
        batch.commit()


def run(messages: int = 300) -> dict:
    """Measure and return the figures as a dict."""
    with FirestoreEmulator(PROJECT) as emulator, tempfile.TemporaryDirectory() as folder:
        os.environ.update(emulator.env() | {"GOOGLE_CLOUD_PROJECT": PROJECT})
        from google.cloud import firestore

        from lib.adapters.cloud_tasks import RecordingTaskScheduler
        from lib.adapters.firestore_store import FirestoreOutboxStore
        from lib.adapters.mail_files import EmlFileSender
        from lib.domain.clock import SystemClock
        from lib.services.dispatch import Dispatcher, DispatchSettings

        logging.getLogger().setLevel(logging.WARNING)
        client = firestore.Client(project=PROJECT)
        clock = SystemClock()
        _seed(client, messages, clock.now())
        dispatcher = Dispatcher(FirestoreOutboxStore(client), EmlFileSender(Path(folder)), RecordingTaskScheduler(),
                                clock, DispatchSettings("http://127.0.0.1:1"))

        baseline = statistics.median(_baseline_writes(client, 100) for _ in range(3))
        started = time.perf_counter()
        sent = 0
        while sent < messages:
            outcomes = dispatcher.run_once(limit=200)
            if not outcomes.get("sent"):
                break
            sent += outcomes["sent"]
        rate = sent / (time.perf_counter() - started)
    return {"messages": messages, "sent": sent, "messages_per_second": round(rate, 1),
            "baseline_transactional_writes_per_second": round(baseline, 1),
            "messages_per_second_ratio_to_baseline": round(rate / baseline, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300, help="outbox emails to send (default 300)")
    print(json.dumps(run(parser.parse_args().messages), indent=2))


if __name__ == "__main__":
    main()
