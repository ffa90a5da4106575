"""Command line: ``python -m lib.importer FOLDER [--config PATH] [--report PATH] [--dry-run] [--json]``.

Exit status: 0 when the import ran, even with rejected rows; 2 when the input is
unusable (a missing file or column, an invalid configuration).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from lib.config.loader import load_config
from lib.errors import ConfigError
from lib.importer import ImportSummary, run_import
from lib.importer.parse import ExportFormatError

if TYPE_CHECKING:
    from google.cloud import firestore

DEFAULT_PROJECT = "crm-local"
EXIT_OK = 0
EXIT_UNUSABLE_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lib.importer",
        description="Import a CRM export (accounts.csv, products.csv, sales_teams.csv, sales_pipeline.csv) into Firestore.",
        epilog="Firestore target: FIRESTORE_EMULATOR_HOST and GOOGLE_CLOUD_PROJECT (default project 'crm-local').",
    )
    parser.add_argument("folder", type=Path, help="folder that contains the four export CSV files")
    parser.add_argument("--config", type=Path, help="configuration YAML (default: $CRM_CONFIG or config/crm.yaml)")
    parser.add_argument("--report", type=Path, help="write every rejected or repaired row to this CSV file")
    parser.add_argument("--dry-run", action="store_true", help="parse and report only; write nothing to Firestore")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the importer and return the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
        client = None if args.dry_run else _client()
        summary = run_import(args.folder, config, client, dt.datetime.now(dt.timezone.utc), args.report)
    except (ExportFormatError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE_INPUT
    print(json.dumps(summary.as_dict(), indent=2) if args.json else format_summary(summary))
    return EXIT_OK


def _client() -> firestore.Client:
    """Build a Firestore client for GOOGLE_CLOUD_PROJECT (default 'crm-local')."""
    from google.cloud import firestore

    project = os.environ.get("GOOGLE_CLOUD_PROJECT", DEFAULT_PROJECT)
    target = os.environ.get("FIRESTORE_EMULATOR_HOST") or "Google Cloud (FIRESTORE_EMULATOR_HOST is not set)"
    logging.getLogger(__name__).info("importing into project %s at %s", project, target)
    return firestore.Client(project=project)


def format_summary(summary: ImportSummary) -> str:
    """Return the summary as a small text table."""
    lines = [f"{'file':<22}{'loaded':>8}{'rejected':>10}{'warnings':>10}"]
    for name, counts in summary.files.items():
        lines.append(f"{name:<22}{counts['loaded']:>8}{counts['rejected']:>10}{counts['warnings']:>10}")
    if summary.dry_run:
        lines.append(f"dry run: nothing written; parsed in {summary.parse_seconds:.1f} s")
    else:
        lines.append(
            f"{summary.written} written, {summary.unchanged} unchanged, {summary.history_written} stage history documents written"
            f" in {summary.write_seconds:.1f} s"
        )
    if summary.kept_foreign:
        lines.append(f"{summary.kept_foreign} existing documents kept: an import did not create them")
    if summary.report_path is not None:
        lines.append(f"report: {summary.report_path}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
