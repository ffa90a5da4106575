"""Unit tests of the CSV export parser, on small exports written per test."""

from __future__ import annotations

import csv
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lib.config.loader import load_config
from lib.errors import ConfigError
from lib.importer.__main__ import EXIT_OK, EXIT_UNUSABLE_INPUT, main
from lib.importer.parse import (
    ACCOUNTS,
    EXPORT_COLUMNS,
    NO_ACTIVITY_MESSAGE,
    PIPELINE,
    PRODUCTS,
    TEAMS,
    ExportFormatError,
    ImportPlan,
    company_id,
    parse_date,
    parse_export,
    plan_from_config,
    slug,
    write_report,
)

STAGE_LIMITS = {"new": 3, "contacted": 7, "won": None, "lost": None}
WIN_PROBABILITIES = {"new": 0.1, "contacted": 0.2, "won": 1.0, "lost": 0.0}
STAGE_STATUS = {"new": "open", "contacted": "open", "won": "won", "lost": "lost"}

ACCOUNT_ROWS = [
    ["Acme Corporation", "technology", "1996", "1100.04", "2822", "United States", ""],
    ["Bluefin Company", "technology", "1993", "1200.5", "3000", "United States", "Acme Corporation"],
]
PRODUCT_ROWS = [["GTX Basic", "GTX", "550"], ["GTX Pro", "GTX", "4800"]]
TEAM_ROWS = [["Ada Lovell", "Dora Brandt", "Central"], ["Zed Lane", "Sam Sewell", "West"]]
WON_ROW = ["OPP00001", "Ada Lovell", "GTX Basic", "Acme Corporation", "Won", "10/20/2016", "3/1/2017", "588"]
ENGAGING_ROW = ["OPP00002", "Zed Lane", "GTX Pro", "Bluefin Company", "Engaging", "11/3/2016", "", ""]
PROSPECTING_ROW = ["OPP00003", "Zed Lane", "GTX Basic", "", "Prospecting", "", "", ""]


def write_csv(path: Path, header: tuple[str, ...] | list[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def write_export(folder: Path, *, accounts=None, products=None, teams=None, pipeline=None) -> Path:
    """Write the four export files; each argument replaces that file's data rows."""
    tables = {
        ACCOUNTS: ACCOUNT_ROWS if accounts is None else accounts,
        PRODUCTS: PRODUCT_ROWS if products is None else products,
        TEAMS: TEAM_ROWS if teams is None else teams,
        PIPELINE: [WON_ROW, ENGAGING_ROW, PROSPECTING_ROW] if pipeline is None else pipeline,
    }
    for name, rows in tables.items():
        write_csv(folder / name, EXPORT_COLUMNS[name], rows)
    return folder


def parse(folder: Path, stage_map=None) -> ImportPlan:
    return parse_export(
        folder,
        stage_map,
        stage_limits=STAGE_LIMITS,
        win_probabilities=WIN_PROBABILITIES,
        stage_status=STAGE_STATUS,
    )


def pipeline_plan(tmp_path: Path, *rows: list[str]) -> ImportPlan:
    return parse(write_export(tmp_path, pipeline=list(rows)))


def lines_for(plan: ImportPlan, record_id: str) -> list[tuple[str, str]]:
    return [(line.level, line.code) for line in plan.report if line.record_id == record_id]


def utc(year: int, month: int, day: int) -> dt.datetime:
    return dt.datetime(year, month, day, tzinfo=dt.timezone.utc)


def test_clean_export_loads_without_report(tmp_path):
    plan = parse(write_export(tmp_path, pipeline=[WON_ROW, ENGAGING_ROW]))

    assert plan.report == ()
    assert plan.summary()[PIPELINE] == {"loaded": 2, "rejected": 0, "warnings": 0}
    assert [deal.doc_id for deal in plan.deals] == ["imp-OPP00001", "imp-OPP00002"]


def test_alias_product_loads_with_warning(tmp_path):
    row = [*ENGAGING_ROW[:2], "GTXPro", *ENGAGING_ROW[3:]]
    plan = pipeline_plan(tmp_path, row)

    assert plan.deals[0].product_id == "p-gtx-pro"
    assert lines_for(plan, "OPP00002") == [("warning", "product_alias")]
    assert "'GTXPro'" in plan.report[0].message
    products = {product.name: product for product in plan.products}
    assert products["GTX Pro"].aliases == ("GTXPro",)


def test_unknown_product_is_rejected(tmp_path):
    row = [*ENGAGING_ROW[:2], "GTX Ultra", *ENGAGING_ROW[3:]]
    plan = pipeline_plan(tmp_path, row)

    assert plan.deals == ()
    assert lines_for(plan, "OPP00002") == [("error", "unknown_product")]


def test_unknown_agent_is_rejected_with_reason(tmp_path):
    row = [ENGAGING_ROW[0], "Nobody Known", *ENGAGING_ROW[2:]]
    plan = pipeline_plan(tmp_path, row)

    assert plan.deals == ()
    assert plan.summary()[PIPELINE] == {"loaded": 0, "rejected": 1, "warnings": 0}
    (line,) = plan.report
    assert (line.file, line.row, line.record_id, line.level, line.code) == (PIPELINE, 1, "OPP00002", "error", "unknown_sales_agent")
    assert "'Nobody Known'" in line.message
    assert TEAMS in line.message


def test_missing_column_names_the_column(tmp_path):
    write_export(tmp_path)
    header = [column for column in EXPORT_COLUMNS[PIPELINE] if column != "close_value"]
    write_csv(tmp_path / PIPELINE, header, [WON_ROW[:-1]])

    with pytest.raises(ExportFormatError, match="close_value"):
        parse(tmp_path)


def test_missing_file_names_file_and_columns(tmp_path):
    write_export(tmp_path)
    (tmp_path / PRODUCTS).unlink()

    with pytest.raises(ExportFormatError, match=r"products\.csv.*product, series, sales_price"):
        parse(tmp_path)


def test_non_utf8_file_raises_format_error(tmp_path):
    write_export(tmp_path)
    (tmp_path / ACCOUNTS).write_bytes("account,sector,year_established,revenue,employees,office_location,subsidiary_of\nCaf\xe9,retail,1,1,1,France,\n".encode("latin-1"))

    with pytest.raises(ExportFormatError, match="UTF-8"):
        parse(tmp_path)


def test_header_is_matched_ignoring_case_and_bom(tmp_path):
    write_export(tmp_path)
    text = (tmp_path / PRODUCTS).read_text(encoding="utf-8")
    (tmp_path / PRODUCTS).write_text("\ufeff" + text.replace("product,series", " Product ,SERIES"), encoding="utf-8")

    assert len(parse(tmp_path).products) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3/1/2017", utc(2017, 3, 1)), ("12/31/2017", utc(2017, 12, 31)), ("2017-03-01", utc(2017, 3, 1)), ("", None)],
)
def test_parse_date_reads_us_and_iso_dates(text, expected):
    assert parse_date(text) == expected


@pytest.mark.parametrize("text", ["31/12/2017", "2017/03/01", "March 1, 2017", "2/30/2017", "3/1/17"])
def test_parse_date_rejects_other_forms(text):
    with pytest.raises(ValueError):
        parse_date(text)


def test_us_dates_become_utc_midnight(tmp_path):
    deal = pipeline_plan(tmp_path, WON_ROW).deals[0]

    assert deal.engaged_at == utc(2016, 10, 20)
    assert deal.closed_at == utc(2017, 3, 1)
    assert deal.created_at == utc(2016, 10, 20)
    assert deal.engaged_at.tzinfo is dt.timezone.utc


def test_unparseable_date_is_rejected(tmp_path):
    row = [*WON_ROW[:6], "31/12/2017", WON_ROW[7]]
    plan = pipeline_plan(tmp_path, row)

    assert plan.deals == ()
    assert lines_for(plan, "OPP00001") == [("error", "invalid_date")]
    assert "close_date" in plan.report[0].message


def test_duplicate_opportunity_id_rejects_second_row(tmp_path):
    other = [WON_ROW[0], *ENGAGING_ROW[1:]]
    plan = pipeline_plan(tmp_path, WON_ROW, other)

    assert len(plan.deals) == 1
    assert plan.deals[0].stage_id == "won"
    (line,) = plan.report
    assert (line.row, line.level, line.code) == (2, "error", "duplicate_opportunity_id")
    assert "row 1" in line.message


def test_identical_duplicate_row_is_reported(tmp_path):
    plan = pipeline_plan(tmp_path, WON_ROW, WON_ROW)

    assert len(plan.deals) == 1
    assert [(line.row, line.code) for line in plan.report] == [(2, "duplicate_row")]
    assert plan.summary()[PIPELINE] == {"loaded": 1, "rejected": 1, "warnings": 0}


def test_missing_opportunity_id_is_rejected(tmp_path):
    plan = pipeline_plan(tmp_path, ["", *WON_ROW[1:]])

    assert plan.deals == ()
    assert [(line.row, line.code) for line in plan.report] == [(1, "missing_opportunity_id")]


def test_stale_due_at_adds_stage_limit(tmp_path):
    deal = pipeline_plan(tmp_path, ENGAGING_ROW).deals[0]

    assert deal.stage_id == "contacted"
    assert deal.last_activity_at == utc(2016, 11, 3)
    assert deal.stale_due_at == utc(2016, 11, 3) + dt.timedelta(days=STAGE_LIMITS["contacted"])


def test_prospecting_without_date_warns_no_staleness(tmp_path):
    plan = pipeline_plan(tmp_path, PROSPECTING_ROW)
    deal = plan.deals[0]

    assert deal.stale_due_at is None
    assert deal.created_at is None
    assert deal.stage_entered_at is None
    assert lines_for(plan, "OPP00003") == [("warning", "no_activity_date")]
    assert plan.report[0].message == NO_ACTIVITY_MESSAGE


def test_blank_account_on_open_deal_loads(tmp_path):
    deal = pipeline_plan(tmp_path, PROSPECTING_ROW).deals[0]

    assert deal.company_id is None
    assert deal.name == "Unknown account – GTX Basic"


def test_blank_account_on_won_deal_warns(tmp_path):
    row = [*WON_ROW[:3], "", *WON_ROW[4:]]
    plan = pipeline_plan(tmp_path, row)

    assert plan.deals[0].company_id is None
    assert lines_for(plan, "OPP00001") == [("warning", "missing_account")]


def test_unknown_account_loads_with_warning(tmp_path):
    row = [*WON_ROW[:3], "Initrode", *WON_ROW[4:]]
    plan = pipeline_plan(tmp_path, row)

    assert plan.deals[0].company_id is None
    assert plan.deals[0].name == "Initrode – GTX Basic"
    assert lines_for(plan, "OPP00001") == [("warning", "unknown_account")]


def test_unknown_deal_stage_is_rejected(tmp_path):
    row = [*ENGAGING_ROW[:4], "Negotiating", *ENGAGING_ROW[5:]]
    plan = pipeline_plan(tmp_path, row)

    assert plan.deals == ()
    assert lines_for(plan, "OPP00002") == [("error", "unknown_deal_stage")]
    assert "Prospecting, Engaging, Won, Lost" in plan.report[0].message


def test_close_before_engage_is_rejected(tmp_path):
    row = [*WON_ROW[:5], "3/2/2017", "3/1/2017", WON_ROW[7]]
    plan = pipeline_plan(tmp_path, row)

    assert plan.deals == ()
    assert lines_for(plan, "OPP00001") == [("error", "close_before_engage")]


@pytest.mark.parametrize(("value", "code"), [("n/a", "invalid_close_value"), ("", "won_without_value"), ("0", "won_without_value")])
def test_won_row_needs_positive_value(tmp_path, value, code):
    plan = pipeline_plan(tmp_path, [*WON_ROW[:7], value])

    assert plan.deals == ()
    assert lines_for(plan, "OPP00001") == [("error", code)]


def test_lost_row_with_zero_value_loads(tmp_path):
    row = [*WON_ROW[:4], "Lost", *WON_ROW[5:7], "0"]
    deal = pipeline_plan(tmp_path, row).deals[0]

    assert (deal.status, deal.amount, deal.win_probability) == ("lost", 0.0, 0.0)


def test_open_row_with_close_fields_loads_with_warning(tmp_path):
    row = [*ENGAGING_ROW[:6], "3/1/2017", "100"]
    plan = pipeline_plan(tmp_path, row)
    deal = plan.deals[0]

    assert deal.closed_at is None
    assert deal.amount == 4800.0
    assert lines_for(plan, "OPP00002") == [("warning", "close_fields_on_open_deal")]


def test_amount_is_close_value_or_list_price(tmp_path):
    won, engaging = pipeline_plan(tmp_path, WON_ROW, ENGAGING_ROW).deals

    assert (won.amount, won.amount_is_estimate, won.status) == (588.0, False, "won")
    assert (engaging.amount, engaging.amount_is_estimate, engaging.status) == (4800.0, True, "open")


def test_won_deal_history_has_engage_and_close(tmp_path):
    deal = pipeline_plan(tmp_path, WON_ROW).deals[0]

    assert [(entry.stage_id, entry.entered_at) for entry in deal.history] == [
        ("contacted", utc(2016, 10, 20)),
        ("won", utc(2017, 3, 1)),
    ]
    assert deal.stage_entered_at == utc(2017, 3, 1)
    assert deal.last_activity_at == utc(2017, 3, 1)
    assert deal.stale_due_at is None


def test_deal_document_has_lead_fields(tmp_path):
    document = pipeline_plan(tmp_path, WON_ROW).deals[0].document()

    assert document["company_id"] == "co-acme-corporation"
    assert document["owner_id"] == "m-ada-lovell"
    assert document["product_id"] == "p-gtx-basic"
    assert document["external_id"] == "OPP00001"
    assert document["name"] == "Acme Corporation – GTX Basic"
    assert (document["currency"], document["source"]) == ("USD", "import")
    assert "history" not in document


def test_wrong_column_count_is_rejected(tmp_path):
    plan = pipeline_plan(tmp_path, WON_ROW[:5], [*WON_ROW, "", ""])

    assert [(line.row, line.code) for line in plan.report] == [(1, "wrong_column_count")]
    assert len(plan.deals) == 1


def test_blank_lines_keep_row_numbers(tmp_path):
    write_export(tmp_path)
    path = tmp_path / PIPELINE
    bad = ",".join([WON_ROW[0], "Nobody Known", *WON_ROW[2:]])
    path.write_text(path.read_text(encoding="utf-8").splitlines()[0] + "\n\n" + bad + "\n", encoding="utf-8")

    assert [line.row for line in parse(tmp_path).report] == [2]


def test_sector_and_country_typos_are_corrected(tmp_path):
    accounts = [["Bioholding", "technolgy", "2012", "587.34", "1356", "Philipines", ""]]
    plan = parse(write_export(tmp_path, accounts=accounts, pipeline=[]))
    company = plan.companies[0]

    assert (company.sector, company.country) == ("technology", "Philippines")
    assert lines_for(plan, "Bioholding") == [("warning", "sector_corrected"), ("warning", "office_location_corrected")]


def test_unknown_sector_is_kept_with_warning(tmp_path):
    accounts = [["Bioholding", "aerospace", "2012", "587.34", "1356", "Japan", ""]]
    plan = parse(write_export(tmp_path, accounts=accounts, pipeline=[]))

    assert plan.companies[0].sector == "aerospace"
    assert lines_for(plan, "Bioholding") == [("warning", "unknown_sector")]


def test_company_fields_and_parent(tmp_path):
    companies = {company.name: company for company in parse(write_export(tmp_path)).companies}
    bluefin = companies["Bluefin Company"]

    assert bluefin.doc_id == "co-bluefin-company"
    assert bluefin.parent_company_id == "co-acme-corporation"
    assert (bluefin.year_established, bluefin.revenue_usd_millions, bluefin.employees) == (1993, 1200.5, 3000)
    document = bluefin.document()
    assert document["key"] == "bluefin company"
    assert document["domain"] is None
    assert document["external_ref"] == {"system": "crm-export", "id": "Bluefin Company"}


def test_unknown_parent_and_bad_number_warn(tmp_path):
    accounts = [["Cheers", "entertainment", "1993", "lots", "6472", "United States", "Massive Dynamic"]]
    plan = parse(write_export(tmp_path, accounts=accounts, pipeline=[]))
    company = plan.companies[0]

    assert (company.revenue_usd_millions, company.parent_company_id) == (None, None)
    assert lines_for(plan, "Cheers") == [("warning", "invalid_number"), ("warning", "unknown_parent")]


def test_duplicate_account_rejects_second(tmp_path):
    accounts = [ACCOUNT_ROWS[0], ["Acme-Corporation", "retail", "2000", "1", "1", "Japan", ""]]
    plan = parse(write_export(tmp_path, accounts=accounts, pipeline=[]))

    assert [company.name for company in plan.companies] == ["Acme Corporation"]
    assert lines_for(plan, "Acme-Corporation") == [("error", "duplicate_account")]


def test_invalid_price_rejects_product_and_its_deals(tmp_path):
    products = [PRODUCT_ROWS[0], ["GTX Pro", "GTX", "call us"]]
    plan = parse(write_export(tmp_path, products=products, pipeline=[ENGAGING_ROW]))

    assert [product.name for product in plan.products] == ["GTX Basic"]
    assert lines_for(plan, "GTX Pro") == [("error", "invalid_price")]
    assert lines_for(plan, "OPP00002") == [("error", "unknown_product")]


def test_managers_get_their_own_members(tmp_path):
    members = {member.doc_id: member for member in parse(write_export(tmp_path)).members}

    assert members["m-ada-lovell"].manager_id == "m-dora-brandt"
    assert members["m-ada-lovell"].role == "rep"
    manager = members["m-dora-brandt"]
    assert (manager.role, manager.manager_id, manager.regional_office) == ("manager", None, "Central")


def test_agent_without_manager_warns(tmp_path):
    plan = parse(write_export(tmp_path, teams=[["Ada Lovell", "", "Central"]], pipeline=[]))

    assert plan.members[0].manager_id is None
    assert lines_for(plan, "Ada Lovell") == [("warning", "missing_manager")]


def test_slug_of_ascii_and_non_ascii_names():
    assert slug("Gekko & Co") == "gekko-co"
    assert company_id("J-Texon") == "co-j-texon"
    assert slug("台灣大哥大") == slug("台灣大哥大")
    assert len(slug("台灣大哥大")) == 16
    assert slug("Café Uno") != slug("Cafe Uno")


def test_every_row_is_loaded_or_rejected(tmp_path):
    rows = [WON_ROW, ENGAGING_ROW, PROSPECTING_ROW, WON_ROW, ["X1", "Nobody", "GTX Basic", "", "Won", "", "", ""]]
    plan = pipeline_plan(tmp_path, *rows)
    counts = plan.summary()[PIPELINE]

    assert counts["loaded"] + counts["rejected"] == len(rows)
    rejected = {line.row for line in plan.report if line.level == "error"}
    assert len(rejected) == counts["rejected"]


def test_custom_stage_map_with_unknown_stage_raises(tmp_path):
    write_export(tmp_path)

    with pytest.raises(ConfigError, match="'closing'"):
        parse(tmp_path, {"Prospecting": "new", "Won": "closing"})


def test_custom_stage_map_is_used(tmp_path):
    stage_map = {"Prospecting": "new", "Engaging": "new", "Won": "won", "Lost": "lost"}
    deal = parse(write_export(tmp_path, pipeline=[ENGAGING_ROW]), stage_map).deals[0]

    assert deal.stage_id == "new"
    assert deal.stale_due_at == utc(2016, 11, 3) + dt.timedelta(days=STAGE_LIMITS["new"])


def test_plan_from_config_uses_pipeline_stages(tmp_path):
    plan = plan_from_config(write_export(tmp_path), load_config())
    won, engaging, _ = plan.deals

    assert won.win_probability == 1.0
    assert engaging.win_probability == 0.2
    assert engaging.stale_due_at == utc(2016, 11, 10)


def test_write_report_writes_every_line(tmp_path):
    row = [ENGAGING_ROW[0], "Nobody Known", *ENGAGING_ROW[2:]]
    plan = pipeline_plan(tmp_path, row, PROSPECTING_ROW)
    path = tmp_path / "report.csv"

    write_report(plan.report, path)

    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["record_id"], row["level"], row["code"]) for row in rows] == [
        ("OPP00002", "error", "unknown_sales_agent"),
        ("OPP00003", "warning", "no_activity_date"),
    ]
    assert rows[0]["file"] == PIPELINE
    assert rows[0]["row"] == "1"


def test_cli_dry_run_prints_json_summary(tmp_path, capsys):
    write_export(tmp_path)

    status = main([str(tmp_path), "--dry-run", "--json", "--report", str(tmp_path / "report.csv")])

    assert status == EXIT_OK
    summary = json.loads(capsys.readouterr().out)
    assert summary["dry_run"] is True
    assert summary["files"][PIPELINE] == {"loaded": 3, "rejected": 0, "warnings": 1}
    assert (tmp_path / "report.csv").is_file()


def test_cli_missing_file_exits_2(tmp_path, capsys):
    write_export(tmp_path)
    (tmp_path / TEAMS).unlink()

    assert main([str(tmp_path), "--dry-run"]) == EXIT_UNUSABLE_INPUT
    assert "sales_teams.csv" in capsys.readouterr().err


def test_parser_imports_no_google_modules():
    # The interpreter may load the bare 'google' namespace packages at start-up, so compare to a baseline.
    code = (
        "import sys; before = set(sys.modules); import lib.importer.parse, lib.importer; "
        "print(sorted(m for m in set(sys.modules) - before if m.startswith('google')))"
    )
    root = Path(__file__).resolve().parents[2]

    output = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True).stdout

    assert output.strip() == "[]"
