"""Gmail sync benchmark: API requests and quota units per notification, and parse+classify throughput.

1. Requests and units: one notification whose history page adds ``N`` new
   messages (each seen twice, plus drafts) is replayed through the real
   ``GmailClient`` with ``ReplayHttp`` and an in-memory store. Targets: one
   history.list page plus one batch request per 100 new messages, and at most
   5 quota units per message fetched.
2. Throughput: messages per second through ``parse_bytes`` + ``classify`` on
   the real messages under ``../shared/data/email``, reported as a ratio to
   ``email.message_from_bytes`` on the same files in the same run, so the
   figure does not depend on the machine.

Run: ``python -m benchmarks.gmail_sync [--messages N]``
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import email
import email.policy
import json
import logging
import tempfile
import time
from pathlib import Path

from lib.adapters.gmail_api import GmailClient
from lib.adapters.gmail_replay import replay_service_factory
from lib.adapters.memory_mail import MemoryMailStore
from lib.config.loader import load_config
from lib.domain.clock import FixedClock
from lib.mail.classify import classify
from lib.mail.parse import parse_bytes
from lib.services.intake import IntakeService
from lib.services.mail_sync import MailSyncService

MAILBOX = "sales@example.com"
EMAIL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "email"


def _resource(index: int) -> dict:
    raw = (f"From: Prospect {index} <p{index}@example.com>\r\nTo: {MAILBOX}\r\nSubject: Question {index}\r\n"
           f"Message-ID: <bench-{index}@example.com>\r\nContent-Type: text/plain\r\n\r\nHello\r\n").encode()
    return {"id": f"m{index:05d}", "threadId": f"t{index:05d}", "labelIds": ["INBOX"],
            "raw": base64.urlsafe_b64encode(raw).decode()}


def _write_replay(folder: Path, count: int) -> None:
    (folder / "messages").mkdir(parents=True)
    history = []
    for index in range(count):
        resource = _resource(index)
        (folder / "messages" / f"{resource['id']}.json").write_text(json.dumps({"status": 200, "response": resource}))
        record = {"messagesAdded": [{"message": {"id": resource["id"], "labelIds": ["INBOX"]}}]}
        history += [record, record, {"messagesAdded": [{"message": {"id": f"d{index}", "labelIds": ["DRAFT"]}}]}]
    page = {"history": history, "historyId": "2000"}
    (folder / "history-1000.json").write_text(json.dumps({"status": 200, "response": page}))


def measure_requests(count: int) -> dict:
    """Replay one notification with ``count`` new messages and return the request and unit counts."""
    config = load_config()
    config = config.model_copy(update={"mail": config.mail.model_copy(update={"mailboxes": (MAILBOX,)})})
    with tempfile.TemporaryDirectory() as work:
        _write_replay(Path(work), count)
        client = GmailClient(replay_service_factory(Path(work)))
        store, clock = MemoryMailStore(), FixedClock(dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc))
        store.put(f"mailboxes/{MAILBOX}", {"history_id": 1000})
        service = MailSyncService(config, store, client, IntakeService(config, store, clock), clock)
        service.handle_notification(MAILBOX, 2000)
    usage = client.usage.snapshot()
    fetched = usage["calls"].get("messages.get", 0)
    history_pages = usage["calls"].get("history.list", 0)
    return {"new_messages": count, "http_requests": usage["http_requests"], "calls": usage["calls"],
            "quota_units": usage["quota_units"],
            "units_per_message_fetched": round((usage["quota_units"] - 2 * history_pages) / max(fetched, 1), 2),
            "batch_requests": usage["http_requests"] - history_pages}


def measure_throughput(repeat: int = 3) -> dict:
    """Return messages per second of parse+classify and of the standard library parser on the same files."""
    files = sorted(EMAIL_DATA.glob("*.eml")) if EMAIL_DATA.is_dir() else []
    if not files:
        return {"skipped": f"no .eml files under {EMAIL_DATA}"}
    raws = [path.read_bytes() for path in files]

    start = time.perf_counter()
    for _ in range(repeat):
        for raw in raws:
            email.message_from_bytes(raw, policy=email.policy.default)
    baseline = len(raws) * repeat / (time.perf_counter() - start)

    start = time.perf_counter()
    for _ in range(repeat):
        for raw in raws:
            classify(parse_bytes(raw))
    ours = len(raws) * repeat / (time.perf_counter() - start)
    return {"files": len(raws), "parse_classify_per_second": round(ours, 1),
            "stdlib_parse_per_second": round(baseline, 1), "ratio_to_stdlib": round(ours / baseline, 3)}


def run(messages: int = 250) -> dict:
    """Run both measurements and return their figures."""
    logging.disable(logging.INFO)
    try:
        return {"per_notification": measure_requests(messages), "throughput": measure_throughput()}
    finally:
        logging.disable(logging.NOTSET)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=250, help="new messages in the replayed notification")
    print(json.dumps(run(parser.parse_args().messages), indent=2))


if __name__ == "__main__":
    main()
