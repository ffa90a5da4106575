"""The local main job: start the stack, replay a day of demo deliveries, dispatch, summarise.

Used by ``make run`` and ``make serve`` through ``python -m lib.cli``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import secrets
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import requests

from lib.devstack.emulators import REPO_ROOT, FunctionsServer, Stack

logger = logging.getLogger(__name__)

PROJECT = "crm-local"
LOCATION = "asia-east1"
QUEUES = ("crm-followups",)
FUNCTIONS_SOURCE = REPO_ROOT / "functions" / "main.py"
LOCAL_INVOKER = "local-invoker@crm-local.iam.gserviceaccount.com"


class _RouterServer(FunctionsServer):
    """The dev router, given its own URL so task targets point back at it."""

    def _child_env(self) -> dict[str, str]:
        env = super()._child_env()
        env.setdefault("CRM_FUNCTION_BASE_URL", self.url)
        return env


@dataclasses.dataclass
class LocalStack:
    stack: Stack
    server: FunctionsServer
    secrets: dict[str, bytes]
    env: dict[str, str]
    out_dir: Path
    signer: object = None

    @property
    def url(self) -> str:
        return self.server.url


def _source_secrets(config_path: str | None) -> dict[str, bytes]:
    from lib.config.loader import load_config

    config = load_config(config_path)
    return {source.id: secrets.token_hex(24).encode() for source in config.sources}


def _local_oidc(out_dir: Path) -> tuple[object, Path, Path]:
    from cryptography.hazmat.primitives import serialization

    from lib.adapters.cloud_tasks import write_local_oidc_key
    from lib.adapters.oidc import LocalOidcSigner

    signer = LocalOidcSigner()
    certs_path = out_dir / "local-oidc-certs.json"
    certs_path.write_text(json.dumps(signer.certs()), encoding="utf-8")
    # NOTE: LocalOidcSigner has no public export of its key; the emulated tasks sign with it.
    pem = signer._private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()).decode("ascii")
    key_path = out_dir / "local-oidc-key.json"
    write_local_oidc_key(key_path, pem, signer.kid, signer.issuer)
    return signer, certs_path, key_path


@contextlib.contextmanager
def local_stack(out_dir: Path, config_path: str | None = None, pubsub: bool = False) -> Iterator[LocalStack]:
    """Start Firestore, Cloud Tasks (and Pub/Sub) emulators and the functions on one port."""
    out_dir.mkdir(parents=True, exist_ok=True)
    # The file mail adapter treats an existing file as already sent, so a new run
    # starts from an empty outbox folder.
    shutil.rmtree(out_dir / "outbox", ignore_errors=True)
    source_secrets = _source_secrets(config_path)
    signer, certs_path, key_path = _local_oidc(out_dir)
    with Stack(PROJECT, pubsub=pubsub, location=LOCATION, queues=QUEUES, log_dir=out_dir / "logs") as stack:
        env = stack.env() | {
            "CRM_MAIL_ADAPTER": "file",
            "CRM_OUTBOX_DIR": str(out_dir / "outbox"),
            "CRM_TASKS_LOCATION": LOCATION,
            "CRM_INVOKER_EMAILS": LOCAL_INVOKER,
            "CRM_OIDC_CERTS_FILE": str(certs_path),
            "CRM_LOCAL_OIDC_KEY_FILE": str(key_path),
            "CRM_UNSUBSCRIBE_KEY": secrets.token_hex(32),
            "CRM_TASKS_SERVICE_ACCOUNT": LOCAL_INVOKER,
        }
        if config_path:
            env["CRM_CONFIG"] = str(Path(config_path).resolve())
        env |= {f"CRM_SECRET_{source_id.upper()}": value.decode() for source_id, value in source_secrets.items()}
        with _RouterServer(FUNCTIONS_SOURCE, "local_router", env, log_dir=out_dir / "logs") as server:
            env["CRM_FUNCTION_BASE_URL"] = server.url
            yield LocalStack(stack, server, source_secrets, env, out_dir, signer)


def post_delivery(base_url: str, delivery) -> requests.Response:
    """Send one demo delivery to the local functions exactly as built."""
    return requests.request(delivery.method, base_url + delivery.path, params=delivery.query or None,
                            headers=delivery.headers, data=delivery.body, timeout=60)


def replay_day(local: LocalStack) -> list[tuple[object, int, dict]]:
    """Post the demo day in order and return each delivery with its status and reply."""
    from demo.day import build_day

    outcomes = []
    for delivery in build_day(local.secrets, None, base_url=local.url):
        response = post_delivery(local.url, delivery)
        try:
            body = response.json()
        except ValueError:
            body = {"text": response.text[:200]}
        outcomes.append((delivery, response.status_code, body))
    return outcomes


def summarise(outcomes: list[tuple[object, int, dict]], client, dispatched: Counter) -> dict:
    """Count what the day produced, from the replies and from the store itself."""
    replies = Counter()
    rejections = Counter()
    for delivery, status, body in outcomes:
        if status >= 400:
            rejections[f"{status} {body.get('error', 'error')}"] += 1
            continue
        for result in body.get("results", []):
            replies[result.get("status", "unknown")] += 1

    leads_by_source, leads_by_rep = Counter(), Counter()
    for doc in client.collection("leads").stream():
        lead = doc.to_dict()
        leads_by_source[lead.get("source_id")] += 1
        leads_by_rep[lead.get("owner_id")] += 1
    outbox = Counter()
    for doc in client.collection("outbox").stream():
        record = doc.to_dict()
        outbox[f"{record.get('purpose')}: {record.get('status')}"] += 1
    counts = {name: sum(1 for _ in client.collection(name).stream())
              for name in ("contacts", "leads", "deals", "tasks", "followups", "audit")}
    return {
        "deliveries": len(outcomes),
        "results": dict(replies),
        "duplicates_absorbed": replies.get("duplicate", 0),
        "rejections": dict(rejections),
        "leads_by_source": dict(leads_by_source),
        "leads_by_rep": dict(leads_by_rep),
        "outbox": dict(outbox),
        "dispatch": {key: value for key, value in dispatched.items() if ":" not in key},
        "records": counts,
    }


def print_summary(summary: dict, imported: dict | None = None) -> None:
    """Print the run's summary as aligned text sections."""
    if imported is not None:
        print("\nImported CRM export (loaded / rejected / warnings)")
        for file_name, counts in imported.get("files", {}).items():
            print(f"  {file_name:<28} {counts['loaded']} / {counts['rejected']} / {counts['warnings']}")
        for key in ("written", "unchanged", "history_written", "report_path"):
            if key in imported:
                print(f"  {key:<28} {imported[key]}")
    print(f"\nReplayed {summary['deliveries']} deliveries")
    sections = [("Results", "results"), ("Leads by source", "leads_by_source"), ("Leads by rep", "leads_by_rep"),
                ("Rejections by reason", "rejections"), ("Outbox messages", "outbox"),
                ("Dispatcher", "dispatch"), ("Records", "records")]
    print(f"  {'duplicates absorbed':<28} {summary['duplicates_absorbed']}")
    for title, key in sections:
        print(f"\n{title}")
        for name, count in sorted(summary[key].items(), key=lambda item: str(item[0])):
            print(f"  {str(name):<28} {count}")
