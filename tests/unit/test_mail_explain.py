"""Unit tests of the ``crm mail explain`` command, run as a subprocess and in process."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lib.mail.explain import ERROR_MISSING_PATH, main

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
EMAIL_DIR = SHARED / "data" / "email"

if not EMAIL_DIR.is_dir():
    pytest.skip(f"shared data not found at {EMAIL_DIR}", allow_module_level=True)

REQUIRED_KEYS = {"file", "kind", "reason", "from", "subject", "message_id"}

MBOX = (
    "From alice@example.com Mon Jun  2 09:00:00 2025\n"
    "From: Alice <alice@example.com>\nTo: sales@example.com\nSubject: Quote\nMessage-ID: <a1@example.com>\n\n"
    "Please send a quote.\n>From the team\n\n"
    "From MAILER-DAEMON Mon Jun  2 09:05:00 2025\n"
    "From: Mail Delivery System <MAILER-DAEMON@example.com>\nTo: sales@example.com\n"
    "Subject: Undelivered Mail Returned to Sender\nX-Failed-Recipients: ghost@example.com\n\n"
    "550 5.1.1 user unknown\n"
)


def run_explain(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lib.mail.explain", *args],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )


def json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_json_lines_have_required_keys():
    files = [str(EMAIL_DIR / "bounce_sisimai_qmail_01.eml"), str(EMAIL_DIR / "autoreply_sisimai_rfc3834_01.eml")]
    result = run_explain(*files, "--json")
    records = json_lines(result.stdout)
    assert result.returncode == 0
    assert len(records) == 2
    for record in records:
        assert REQUIRED_KEYS <= set(record)


def test_json_bounce_record():
    result = run_explain(str(EMAIL_DIR / "bounce_sisimai_qmail_01.eml"), "--json")
    record = json_lines(result.stdout)[0]
    assert record["kind"] == "bounce"
    assert record["bounce"]["recipient"] == "kijitora@example.ne.jp"
    assert record["bounce"]["permanent"] is True
    assert set(record["bounce"]) == {"recipient", "status", "permanent", "diagnostic"}


def test_json_from_is_name_and_address():
    result = run_explain(str(EMAIL_DIR / "cjk_spamscope_gb2312_from_subject.eml"), "--json")
    record = json_lines(result.stdout)[0]
    assert record["from"] == {"name": "张先生", "address": "baoguan@hotmail.com"}


def test_mbox_gives_one_record_per_message(tmp_path):
    mbox = tmp_path / "inbox"
    mbox.write_text(MBOX, encoding="utf-8")
    records = json_lines(run_explain(str(mbox), "--json").stdout)
    assert [record["index"] for record in records] == [0, 1]
    assert [record["kind"] for record in records] == ["personal", "bounce"]
    assert records[1]["bounce"]["recipient"] == "ghost@example.com"


def test_folder_walk_sorted(tmp_path, capsys):
    for name in ("b.eml", "a.eml"):
        (tmp_path / name).write_bytes(b"From: x@example.com\nSubject: " + name.encode() + b"\n\nhi\n")
    assert main([str(tmp_path), "--json"]) == 0
    records = json_lines(capsys.readouterr().out)
    assert [Path(record["file"]).name for record in records] == ["a.eml", "b.eml"]


def test_table_output_has_header_and_rows(capsys):
    assert main([str(EMAIL_DIR / "autoreply_flanker_mdn.eml")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("KIND")
    assert lines[1].startswith("read_receipt")


def test_missing_path_exits_2():
    missing = "/nonexistent/mail.eml"
    result = run_explain(missing, "--json")
    assert result.returncode == 2
    assert ERROR_MISSING_PATH.format(path=missing) in result.stderr
