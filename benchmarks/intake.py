"""Intake benchmark: Firestore round trips per new lead, and leads per second.

Both run in one process against the Firestore emulator. Throughput goes through
the real ``intake_webhook`` entry point: signature check, parsing, pipeline and
transaction. It is reported as a ratio to a transactional write of one document
measured in the same run, which removes most of the machine's and the
emulator's speed from the figure. The ratio still varies with load, so each of
three rounds is reported.

Run: ``python -m benchmarks.intake [--leads N]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import statistics
import time

import flask

from benchmarks.firestore_counts import count_rpcs
from lib.devstack.emulators import FirestoreEmulator

PROJECT = "crm-bench"
SECRET = "bench-secret"


def _webflow_request(index: int) -> tuple[bytes, dict[str, str]]:
    body = {"triggerType": "form_submission", "payload": {
        "name": "Contact", "id": f"bench-{index:06d}", "submittedAt": "2026-12-01T02:00:00Z",
        "data": {"Name": f"測試客戶{index}", "Email": f"lead{index}@bench{index % 97}.example.com",
                 "Phone": f"09{index % 100000000:08d}", "Company": f"Bench Co {index % 97}",
                 "Message": "想了解方案"}}}
    raw = json.dumps(body, ensure_ascii=False).encode()
    timestamp = str(int(time.time() * 1000))
    signature = hmac.new(SECRET.encode(), f"{timestamp}:".encode() + raw, hashlib.sha256).hexdigest()
    return raw, {"Content-Type": "application/json", "x-webflow-timestamp": timestamp,
                 "x-webflow-signature": signature}


def _baseline_writes(client, count: int) -> float:
    """Return transactional single-document writes per second."""
    from google.cloud import firestore

    @firestore.transactional
    def write(transaction, ref):
        transaction.set(ref, {"value": 1, "at": dt.datetime.now(dt.timezone.utc)})

    started = time.perf_counter()
    for index in range(count):
        write(client.transaction(), client.document(f"bench_baseline/doc-{index}"))
    return count / (time.perf_counter() - started)


def _leads_through_webhook(main, count: int, offset: int) -> tuple[float, list[int]]:
    app = flask.Flask("bench")
    statuses = []
    started = time.perf_counter()
    for index in range(offset, offset + count):
        raw, headers = _webflow_request(index)
        with app.test_request_context("/intake_webhook/webflow", method="POST", data=raw, headers=headers):
            statuses.append(main.intake_webhook(flask.request).status_code)
    return count / (time.perf_counter() - started), statuses


def run(leads: int = 200) -> dict:
    """Measure and return the figures as a dict."""
    with FirestoreEmulator(PROJECT) as emulator:
        os.environ.update(emulator.env() | {"GOOGLE_CLOUD_PROJECT": PROJECT, "CRM_SECRET_WEBFLOW": SECRET,
                                            "CRM_MAIL_ADAPTER": "file", "CRM_OUTBOX_DIR": "out/bench-outbox"})
        from functions import main
        from lib import bootstrap

        logging.getLogger().setLevel(logging.WARNING)

        bootstrap.app.cache_clear()
        app = bootstrap.app()
        client = app.intake._store._client
        calls = count_rpcs(client)

        # Warm up: the first transactions pay for channel set-up and emulator JIT.
        _leads_through_webhook(main, 5, 900_000)
        _baseline_writes(client, 50)
        per_lead = []
        for index in range(20):
            calls.clear()
            _leads_through_webhook(main, 1, 800_000 + index)
            per_lead.append(sum(calls.values()))

        # Alternate the baseline and the leads, so both see the same machine load.
        rounds, rates, baselines, statuses = 3, [], [], []
        for round_index in range(rounds):
            baselines.append(_baseline_writes(client, leads // rounds))
            rate, round_statuses = _leads_through_webhook(main, leads // rounds, round_index * leads)
            rates.append(rate)
            statuses += round_statuses
        ratios = [rate / baseline for rate, baseline in zip(rates, baselines)]
    return {
        "round_trips_per_new_lead": max(per_lead),
        "round_trips_per_new_lead_median": statistics.median(per_lead),
        "leads_per_second": round(statistics.median(rates), 1),
        "baseline_transactional_writes_per_second": round(statistics.median(baselines), 1),
        "leads_per_second_ratio_to_baseline": round(statistics.median(ratios), 3),
        "ratio_per_round": [round(ratio, 3) for ratio in ratios],
        "leads": leads // rounds * rounds,
        "non_2xx": sum(1 for status in statuses if status >= 300),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=200, help="number of new leads to time (default 200)")
    print(json.dumps(run(parser.parse_args().leads), indent=2))


if __name__ == "__main__":
    main()
