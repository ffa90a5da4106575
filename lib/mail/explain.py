"""``crm mail explain``: show how each message in .eml or mbox files is classified.

Usage::

    python -m lib.mail.explain PATH... [--json]

A folder is walked recursively in sorted order. A file that is not named
``*.eml`` and whose first line starts with ``From `` is read as an mbox, and
each of its messages is explained on its own. A ``.eml`` file is always one
message, even with a leading ``From `` line, because a body line starting with
``From `` would otherwise split it.
"""

from __future__ import annotations

import argparse
import json
import mailbox
import sys
from collections.abc import Iterator
from pathlib import Path

from lib.mail.classify import classify
from lib.mail.parse import ParsedMessage, parse_bytes

EXIT_OK = 0
EXIT_USAGE = 2
ERROR_MISSING_PATH = "crm mail explain: path not found: {path}; pass an existing .eml file, mbox file or folder"

_TABLE_COLUMNS = (("kind", 14), ("from", 32), ("subject", 48), ("file", 0))


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crm mail explain",
        description="Classify .eml and mbox files and show the evidence for each decision.",
    )
    parser.add_argument("paths", nargs="+", type=Path, help=".eml file, mbox file or folder to explain")
    parser.add_argument("--json", action="store_true", help="print one JSON object per message instead of a table")
    return parser


def _is_mbox(path: Path) -> bool:
    if path.suffix.lower() == ".eml":
        return False
    with path.open("rb") as handle:
        return handle.read(5) == b"From "


def _files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(item for item in path.rglob("*") if item.is_file() and _is_candidate(item))
        else:
            yield path


def _is_candidate(path: Path) -> bool:
    return path.suffix.lower() in (".eml", ".mbox") or _is_mbox(path)


def _messages(path: Path) -> Iterator[tuple[dict, ParsedMessage]]:
    """Yield (location, parsed message) for a .eml file or each message of an mbox."""
    if not _is_mbox(path):
        yield {"file": str(path)}, parse_bytes(path.read_bytes())
        return
    box = mailbox.mbox(str(path), create=False)
    try:
        for index, key in enumerate(box.keys()):
            yield {"file": str(path), "index": index}, parse_bytes(box.get_bytes(key))
    finally:
        box.close()


def explain_message(location: dict, msg: ParsedMessage) -> dict:
    """Build the report record of one message.

    Args:
        location: ``{"file": ...}`` plus ``"index"`` for an mbox message.
        msg: The parsed message.

    Returns:
        A JSON-ready dict with file, kind, reason, from, subject and
        message_id, plus ``bounce`` for bounces and ``auto_reply_until`` when known.
    """
    result = classify(msg)
    sender = msg.from_address
    record = {
        **location,
        "kind": result.kind,
        "reason": result.reason,
        "from": {"name": sender.display_name if sender else "", "address": sender.address if sender else ""},
        "subject": msg.subject,
        "message_id": msg.message_id,
    }
    if result.bounce is not None:
        record["bounce"] = {
            "recipient": result.bounce.recipient,
            "status": result.bounce.status,
            "permanent": result.bounce.permanent,
            "diagnostic": result.bounce.diagnostic,
        }
    if result.auto_reply_until is not None:
        record["auto_reply_until"] = result.auto_reply_until.isoformat()
    return record


def _table_row(record: dict) -> str:
    sender = record["from"]["address"] or record["from"]["name"]
    where = record["file"] + (f"#{record['index']}" if "index" in record else "")
    cells = {"kind": record["kind"], "from": sender, "subject": record["subject"], "file": where}
    parts = []
    for name, width in _TABLE_COLUMNS:
        text = " ".join(str(cells[name]).split())
        parts.append(text[: width - 1].ljust(width) if width else text)
    return "".join(parts).rstrip()


def _print_table(records: list[dict]) -> None:
    print("".join(name.upper().ljust(width) if width else name.upper() for name, width in _TABLE_COLUMNS))
    for record in records:
        print(_table_row(record))
        print(f"{'':14}reason: {record['reason']}")
        if "bounce" in record:
            bounce = record["bounce"]
            print(f"{'':14}bounce: {bounce['recipient']} status={bounce['status']} permanent={bounce['permanent']}")


def main(argv: list[str] | None = None) -> int:
    """Run ``crm mail explain``.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when None.

    Returns:
        0 on success, 2 when a path does not exist (the message goes to stderr).
    """
    args = _build_parser().parse_args(argv)
    for path in args.paths:
        if not path.exists():
            print(ERROR_MISSING_PATH.format(path=path), file=sys.stderr)
            return EXIT_USAGE

    records = []
    for path in _files(args.paths):
        for location, msg in _messages(path):
            record = explain_message(location, msg)
            if args.json:
                print(json.dumps(record, ensure_ascii=False))
            else:
                records.append(record)
    if not args.json:
        _print_table(records)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
