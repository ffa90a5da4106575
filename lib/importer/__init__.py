"""Import a CRM export (CSV files) into Firestore: companies, members, products and deals.

``lib.importer.parse`` turns the files into an ``ImportPlan`` and a report without
touching Firestore; ``run_import`` also writes the plan. Run it as
``python -m lib.importer FOLDER``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lib.importer.parse import ExportFormatError, ImportPlan, ReportLine, parse_export, plan_from_config, write_report

if TYPE_CHECKING:
    from google.cloud import firestore

    from lib.config.schema import CrmConfig

__all__ = [
    "ExportFormatError",
    "ImportPlan",
    "ImportSummary",
    "ReportLine",
    "parse_export",
    "plan_from_config",
    "run_import",
    "write_report",
]


@dataclasses.dataclass(frozen=True)
class ImportSummary:
    """The outcome of one import run.

    Attributes:
        files: Per export file, ``{"loaded": n, "rejected": n, "warnings": n}``.
        report: Every report line, sorted by file and row.
        written: Records written; 0 on a dry run.
        unchanged: Records skipped because their stored content was current.
        history_written: Stage history documents written.
        kept_foreign: Existing documents left alone because an import did not create them.
        parse_seconds: Time spent reading and checking the files.
        write_seconds: Time spent reading and writing Firestore.
        report_path: Where the report CSV was written, if anywhere.
        dry_run: True when nothing was written.
    """

    files: dict[str, dict[str, int]]
    report: tuple[ReportLine, ...]
    written: int = 0
    unchanged: int = 0
    history_written: int = 0
    kept_foreign: int = 0
    parse_seconds: float = 0.0
    write_seconds: float = 0.0
    report_path: Path | None = None
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Return the summary without the report lines, ready for ``json.dumps``."""
        summary = dataclasses.asdict(self)
        del summary["report"]
        summary["report_path"] = str(self.report_path) if self.report_path else None
        return summary


def run_import(
    folder: Path,
    config: CrmConfig,
    client: firestore.Client | None,
    now: dt.datetime,
    report_path: Path | None = None,
) -> ImportSummary:
    """Parse the export in ``folder``, write the report, then write the plan to Firestore.

    Args:
        folder: Folder with the four export CSV files.
        config: Loaded configuration; its pipeline stages give the stage rules.
        client: Firestore client, or None for a dry run that writes nothing.
        now: Aware time stamped into the written documents.
        report_path: Where to write the report CSV; None writes no file.

    Raises:
        ExportFormatError: a file is missing or lacks a required column.
        ConfigError: the stage map names a stage the configuration lacks.
    """
    started = time.perf_counter()
    plan = plan_from_config(Path(folder), config)
    parse_seconds = time.perf_counter() - started
    if report_path is not None:
        write_report(plan.report, Path(report_path))
    summary = ImportSummary(plan.summary(), plan.report, parse_seconds=parse_seconds, report_path=report_path, dry_run=client is None)
    if client is None:
        return summary

    # NOTE: imported here so that parsing alone never loads google.cloud.
    from lib.adapters.firestore_import import write_plan

    stats = write_plan(client, plan, now=now)
    return dataclasses.replace(
        summary,
        written=stats.written,
        unchanged=stats.unchanged,
        history_written=stats.history_written,
        kept_foreign=stats.kept_foreign,
        write_seconds=stats.seconds,
    )
