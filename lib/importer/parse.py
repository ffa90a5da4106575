"""Parse a CRM export (four CSV files) into records to load and a report of problems.

The export is the "CRM Sales Opportunities" layout: ``accounts.csv``,
``products.csv``, ``sales_teams.csv`` and ``sales_pipeline.csv``. Every data row
either becomes a record or gets an ``error`` line in the report, and a row loaded
after a repair (a typo, an alias) gets a ``warning`` line.

The export has dates without a time or zone, so each date is stored as midnight
UTC of that calendar day.

This module reads files but imports nothing from ``google.*``.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import difflib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from lib.domain.ids import slug
from lib.errors import ConfigError, CrmError

if TYPE_CHECKING:
    from lib.config.schema import CrmConfig

ACCOUNTS = "accounts.csv"
PRODUCTS = "products.csv"
TEAMS = "sales_teams.csv"
PIPELINE = "sales_pipeline.csv"

# Required columns of each file, in export order; extra columns are ignored.
EXPORT_COLUMNS: dict[str, tuple[str, ...]] = {
    ACCOUNTS: ("account", "sector", "year_established", "revenue", "employees", "office_location", "subsidiary_of"),
    PRODUCTS: ("product", "series", "sales_price"),
    TEAMS: ("sales_agent", "manager", "regional_office"),
    PIPELINE: (
        "opportunity_id",
        "sales_agent",
        "product",
        "account",
        "deal_stage",
        "engage_date",
        "close_date",
        "close_value",
    ),
}
DEFAULT_STAGE_MAP: dict[str, str] = {"Prospecting": "new", "Engaging": "contacted", "Won": "won", "Lost": "lost"}

# The export stage whose deals have an engage date, which is when they entered it.
ENGAGED_EXPORT_STAGE = "Engaging"
SOURCE = "import"
EXTERNAL_SYSTEM = "crm-export"
CURRENCY = "USD"
UNKNOWN_ACCOUNT_NAME = "Unknown account"
NO_ACTIVITY_MESSAGE = "no activity date; cannot compute staleness"

KNOWN_SECTORS: tuple[str, ...] = (
    "employment",
    "entertainment",
    "finance",
    "marketing",
    "medical",
    "retail",
    "services",
    "software",
    "technology",
    "telecommunications",
)
# Short English country names. 'Korea' stays as written because the export uses it.
_COUNTRY_LIST = """Afghanistan;Albania;Algeria;Andorra;Angola;Argentina;Armenia;Australia;Austria;
    Azerbaijan;Bahamas;Bahrain;Bangladesh;Barbados;Belarus;Belgium;Belize;Benin;Bhutan;
    Bolivia;Bosnia and Herzegovina;Botswana;Brazil;Brunei;Bulgaria;Burkina Faso;Burundi;
    Cambodia;Cameroon;Canada;Cape Verde;Central African Republic;Chad;Chile;China;
    Colombia;Comoros;Congo;Costa Rica;Croatia;Cuba;Cyprus;Czech Republic;Czechia;Denmark;
    Djibouti;Dominica;Dominican Republic;Ecuador;Egypt;El Salvador;Equatorial Guinea;
    Eritrea;Estonia;Eswatini;Ethiopia;Fiji;Finland;France;Gabon;Gambia;Georgia;Germany;
    Ghana;Greece;Grenada;Guatemala;Guinea;Guinea-Bissau;Guyana;Haiti;Honduras;Hong Kong;
    Hungary;Iceland;India;Indonesia;Iran;Iraq;Ireland;Israel;Italy;Ivory Coast;Jamaica;
    Japan;Jordan;Kazakhstan;Kenya;Kiribati;Korea;Kosovo;Kuwait;Kyrgyzstan;Laos;Latvia;
    Lebanon;Lesotho;Liberia;Libya;Liechtenstein;Lithuania;Luxembourg;Macau;Madagascar;
    Malawi;Malaysia;Maldives;Mali;Malta;Marshall Islands;Mauritania;Mauritius;Mexico;
    Micronesia;Moldova;Monaco;Mongolia;Montenegro;Morocco;Mozambique;Myanmar;Namibia;
    Nauru;Nepal;Netherlands;New Zealand;Nicaragua;Niger;Nigeria;North Korea;
    North Macedonia;Norway;Oman;Pakistan;Palau;Palestine;Panama;Papua New Guinea;
    Paraguay;Peru;Philippines;Poland;Portugal;Puerto Rico;Qatar;Romania;Russia;Rwanda;
    Saint Lucia;Samoa;San Marino;Saudi Arabia;Senegal;Serbia;Seychelles;Sierra Leone;
    Singapore;Slovakia;Slovenia;Solomon Islands;Somalia;South Africa;South Korea;
    South Sudan;Spain;Sri Lanka;Sudan;Suriname;Sweden;Switzerland;Syria;Taiwan;
    Tajikistan;Tanzania;Thailand;Timor-Leste;Togo;Tonga;Trinidad and Tobago;Tunisia;
    Turkey;Turkmenistan;Tuvalu;Uganda;Ukraine;United Arab Emirates;United Kingdom;
    United States;Uruguay;Uzbekistan;Vanuatu;Vatican City;Venezuela;Vietnam;Yemen;
    Zambia;Zimbabwe"""
KNOWN_COUNTRIES: tuple[str, ...] = tuple(name.strip() for name in _COUNTRY_LIST.split(";"))

# Minimum difflib similarity ratio for a typo correction: 'technolgy' scores 0.95.
TYPO_CUTOFF = 0.85
_NUMBER = re.compile(r"^-?(\d+|\d{1,3}(,\d{3})+)(\.\d+)?$")
_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


class ExportFormatError(CrmError):
    """An export file is missing, lacks a required column, or is not UTF-8 CSV, so nothing can be imported."""


# --- Records -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ReportLine:
    """One problem found in one row of an export file.

    Attributes:
        file: Export file name, e.g. ``sales_pipeline.csv``.
        row: 1-based data row number; the header is row 0 and blank lines count.
        record_id: Opportunity id, account, product or agent name of the row.
        level: ``error`` (the row was not loaded) or ``warning`` (loaded after a repair).
        code: Short snake_case reason, stable for tests and spreadsheets.
        message: English sentence with what was expected and what was found.
    """

    file: str
    row: int
    record_id: str
    level: str
    code: str
    message: str


@dataclasses.dataclass
class FileCounts:
    """Rows loaded and rejected, and warning lines, for one export file."""

    loaded: int = 0
    rejected: int = 0
    warnings: int = 0


@dataclasses.dataclass(frozen=True)
class Company:
    """A customer company from accounts.csv, stored in ``companies``."""

    collection: ClassVar[str] = "companies"
    doc_id: str
    name: str
    sector: str | None
    year_established: int | None
    revenue_usd_millions: float | None
    employees: int | None
    country: str | None
    parent_company_id: str | None = None

    def document(self) -> dict[str, Any]:
        """Return the Firestore fields, without the write timestamps."""
        return {
            "company_id": self.doc_id,
            "name": self.name,
            "key": name_key(self.name),
            "domain": None,
            "sector": self.sector,
            "year_established": self.year_established,
            "revenue_usd_millions": self.revenue_usd_millions,
            "employees": self.employees,
            "country": self.country,
            "parent_company_id": self.parent_company_id,
            "source": SOURCE,
            "external_ref": {"system": EXTERNAL_SYSTEM, "id": self.name},
        }


@dataclasses.dataclass(frozen=True)
class Member:
    """A sales agent or manager from sales_teams.csv, stored in ``members``."""

    collection: ClassVar[str] = "members"
    doc_id: str
    name: str
    manager_id: str | None
    regional_office: str | None
    role: str

    def document(self) -> dict[str, Any]:
        """Return the Firestore fields."""
        return {
            "name": self.name,
            "manager_id": self.manager_id,
            "regional_office": self.regional_office,
            "role": self.role,
            "source": SOURCE,
            "active": True,
        }


@dataclasses.dataclass(frozen=True)
class Product:
    """A product from products.csv, stored in ``products``."""

    collection: ClassVar[str] = "products"
    doc_id: str
    name: str
    series: str | None
    list_price: float
    aliases: tuple[str, ...] = ()

    def document(self) -> dict[str, Any]:
        """Return the Firestore fields."""
        return {
            "name": self.name,
            "series": self.series,
            "list_price": self.list_price,
            "currency": CURRENCY,
            "aliases": list(self.aliases),
        }


@dataclasses.dataclass(frozen=True)
class StageEntry:
    """A known stage transition of a deal, stored in ``deals/{deal_id}/stage_history``."""

    stage_id: str
    entered_at: dt.datetime | None

    def document(self) -> dict[str, Any]:
        """Return the Firestore fields."""
        return {"stage_id": self.stage_id, "entered_at": self.entered_at, "source": SOURCE}


@dataclasses.dataclass(frozen=True)
class Deal:
    """An opportunity from sales_pipeline.csv, stored in ``deals``.

    Attributes:
        history: Stage transitions in order; the last one is the current stage.
    """

    collection: ClassVar[str] = "deals"
    doc_id: str
    name: str
    external_id: str
    company_id: str | None
    owner_id: str
    product_id: str
    stage_id: str
    status: str
    amount: float
    amount_is_estimate: bool
    win_probability: float
    engaged_at: dt.datetime | None
    closed_at: dt.datetime | None
    created_at: dt.datetime | None
    stage_entered_at: dt.datetime | None
    last_activity_at: dt.datetime | None
    stale_due_at: dt.datetime | None
    history: tuple[StageEntry, ...] = ()

    def document(self) -> dict[str, Any]:
        """Return the Firestore fields, without ``imported_at``."""
        fields = {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if field.name not in ("doc_id", "history")
        }
        return {**fields, "currency": CURRENCY, "source": SOURCE}


@dataclasses.dataclass(frozen=True)
class ImportPlan:
    """Everything one export yields: records to write and the report.

    Attributes:
        counts: Per export file name, rows loaded and rejected and warning lines.
    """

    companies: tuple[Company, ...]
    members: tuple[Member, ...]
    products: tuple[Product, ...]
    deals: tuple[Deal, ...]
    report: tuple[ReportLine, ...]
    counts: Mapping[str, FileCounts]

    def summary(self) -> dict[str, dict[str, int]]:
        """Return ``{file: {"loaded": n, "rejected": n, "warnings": n}}``."""
        return {name: dataclasses.asdict(counts) for name, counts in self.counts.items()}


@dataclasses.dataclass(frozen=True)
class StageSettings:
    """Pipeline settings the parser needs, taken from the configuration."""

    stage_map: Mapping[str, str]
    stage_limits: Mapping[str, int | None]
    win_probabilities: Mapping[str, float]
    stage_status: Mapping[str, str]


# --- Names and ids -------------------------------------------------------------


def name_key(name: str) -> str:
    """Return the name casefolded, with punctuation replaced by single spaces."""
    return " ".join(re.sub(r"[\W_]+", " ", name.casefold()).split())


def _compact_key(name: str) -> str:
    return re.sub(r"[\W_]+", "", name.casefold())


def company_id(name: str) -> str:
    return "co-" + slug(name)


def member_id(name: str) -> str:
    return "m-" + slug(name)


def product_id(name: str) -> str:
    return "p-" + slug(name)


def deal_id(opportunity_id: str) -> str:
    return "imp-" + opportunity_id


class _NameIndex:
    """Looks names up exactly, then ignoring case, spaces and punctuation."""

    def __init__(self) -> None:
        self._exact: dict[str, Any] = {}
        self._compact: dict[str, Any] = {}
        self._ambiguous: set[str] = set()

    def add(self, name: str, value: Any) -> None:
        self._exact[name] = value
        key = _compact_key(name)
        if key in self._compact and self._compact[key] is not value:
            self._ambiguous.add(key)
        self._compact[key] = value

    def resolve(self, name: str) -> tuple[Any, bool]:
        """Return ``(value, repaired)``; value is None when the name is unknown."""
        if name in self._exact:
            return self._exact[name], False
        key = _compact_key(name)
        if key in self._ambiguous:
            return None, False
        return self._compact.get(key), True

    def names(self) -> list[str]:
        """Return the names as added."""
        return list(self._exact)


# --- Rows and the report ---------------------------------------------------------


@dataclasses.dataclass
class _Row:
    file: str
    number: int
    cells: dict[str, str]
    record_id: str = ""
    issues: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)

    def error(self, code: str, message: str) -> None:
        self.issues.append(("error", code, message))

    def warning(self, code: str, message: str) -> None:
        self.issues.append(("warning", code, message))

    @property
    def rejected(self) -> bool:
        return any(level == "error" for level, _, _ in self.issues)


class _Report:
    def __init__(self) -> None:
        self.lines: list[ReportLine] = []
        self.counts: dict[str, FileCounts] = {name: FileCounts() for name in EXPORT_COLUMNS}

    def finish(self, row: _Row) -> None:
        """Record the row's issues and count it as loaded or rejected."""
        counts = self.counts[row.file]
        for level, code, message in row.issues:
            self.lines.append(ReportLine(row.file, row.number, row.record_id, level, code, message))
            counts.warnings += level == "warning"
        if row.rejected:
            counts.rejected += 1
        else:
            counts.loaded += 1

    def sorted_lines(self) -> tuple[ReportLine, ...]:
        order = {name: index for index, name in enumerate(EXPORT_COLUMNS)}
        return tuple(sorted(self.lines, key=lambda line: (order[line.file], line.row)))


def _read_rows(folder: Path, file: str, report: _Report) -> Iterator[_Row]:
    """Yield each non-blank data row with stripped cells keyed by column.

    A row whose column count differs from the header's is reported and not yielded.

    Raises:
        ExportFormatError: the header lacks a required column, or the file is
            not UTF-8 or not valid CSV.
    """
    with (folder / file).open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        try:
            header = _read_header(file, reader)
            for number, values in enumerate(reader, start=1):
                if not any(value.strip() for value in values):
                    continue
                row = _make_row(file, number, header, values)
                if row.rejected:
                    report.finish(row)
                else:
                    yield row
        except UnicodeDecodeError as exc:
            raise ExportFormatError(f"{file}: expected UTF-8 text, found byte {exc.object[exc.start]:#04x}; save the export as CSV UTF-8") from exc
        except csv.Error as exc:
            raise ExportFormatError(f"{file}: invalid CSV near line {reader.line_num}: {exc}") from exc


def _read_header(file: str, reader: Iterator[list[str]]) -> list[str]:
    required = EXPORT_COLUMNS[file]
    header = [column.strip().casefold() for column in next(reader, [])]
    missing = [column for column in required if column not in header]
    if missing:
        raise ExportFormatError(
            f"{file}: the header lacks required column(s) {', '.join(missing)}; found {header!r}, expected {', '.join(required)}"
        )
    return header


def _make_row(file: str, number: int, header: list[str], values: list[str]) -> _Row:
    cells = {column: value.strip() for column, value in zip(header, values)}
    row = _Row(file, number, cells, cells.get(EXPORT_COLUMNS[file][0], ""))
    extra = [value for value in values[len(header):] if value.strip()]
    if len(values) < len(header) or extra:
        row.error("wrong_column_count", f"expected {len(header)} columns as in the header, found {len(values)}")
    return row


def _check_duplicate(row: _Row, seen: dict[str, _Row], key: str, column: str) -> None:
    """Reject the row when an earlier row has the same ``key``."""
    first = seen.get(key)
    if first is None:
        seen[key] = row
    elif first.cells == row.cells:
        row.error("duplicate_row", f"expected each row once, found the same content as row {first.number}")
    else:
        row.error(f"duplicate_{column}", f"expected a unique {column}, found {row.record_id!r}, which gets the same document id as row {first.number}")


# --- Values ----------------------------------------------------------------------


def _parse_number(text: str) -> float | None:
    """Return the number in ``text`` (thousands commas allowed), or None."""
    if not _NUMBER.match(text):
        return None
    return float(text.replace(",", ""))


def _optional_number(row: _Row, column: str, *, integer: bool = False) -> float | int | None:
    """Return a non-negative number from an optional cell; warn and return None if invalid."""
    text = row.cells.get(column, "")
    if not text:
        return None
    value = _parse_number(text)
    if value is None or value < 0 or (integer and not value.is_integer()):
        kind = "a non-negative whole number" if integer else "a non-negative number"
        row.warning("invalid_number", f"{column}: expected {kind}, found {text!r}; stored as empty")
        return None
    return int(value) if integer else value


def parse_date(text: str) -> dt.datetime | None:
    """Parse ``M/D/YYYY`` (US export style) or ``YYYY-MM-DD`` to midnight UTC.

    Raises:
        ValueError: the text is in neither form or is not a calendar date.
    """
    if not text:
        return None
    us_match = _US_DATE.match(text)
    iso_match = _ISO_DATE.match(text)
    if us_match:
        month, day, year = (int(part) for part in us_match.groups())
    elif iso_match:
        year, month, day = (int(part) for part in iso_match.groups())
    else:
        raise ValueError(f"expected a date as M/D/YYYY or YYYY-MM-DD, found {text!r}")
    return dt.datetime(year, month, day, tzinfo=dt.timezone.utc)


def _date_cell(row: _Row, column: str) -> dt.datetime | None:
    try:
        return parse_date(row.cells.get(column, ""))
    except ValueError as exc:
        row.error("invalid_date", f"{column}: {exc}")
        return None


def _correct_typo(row: _Row, column: str, known: tuple[str, ...], *, lowercase: bool) -> str | None:
    """Return the known spelling of a cell value, warning when it was corrected."""
    text = row.cells.get(column, "")
    if not text:
        return None
    by_fold = {name.casefold(): name for name in known}
    if text.casefold() in by_fold:
        return by_fold[text.casefold()]
    matches = difflib.get_close_matches(text.casefold(), list(by_fold), n=1, cutoff=TYPO_CUTOFF)
    if not matches:
        row.warning(f"unknown_{column}", f"{column}: expected a known value, found {text!r}; stored as found")
        return text.lower() if lowercase else text
    corrected = by_fold[matches[0]]
    row.warning(f"{column}_corrected", f"{column}: expected a known value, found {text!r}; corrected to {corrected!r}")
    return corrected


# --- accounts.csv, products.csv, sales_teams.csv ------------------------------------


def _parse_accounts(folder: Path, report: _Report) -> dict[str, Company]:
    """Return the loaded companies by name, with parents resolved."""
    rows: list[tuple[_Row, Company | None]] = []
    seen: dict[str, _Row] = {}
    for row in _read_rows(folder, ACCOUNTS, report):
        rows.append((row, _parse_account(row, seen)))

    index = _NameIndex()
    for row, company in rows:
        if company is not None and not row.rejected:
            index.add(company.name, company)
    loaded: dict[str, Company] = {}
    for row, company in rows:
        if company is not None and not row.rejected:
            loaded[company.name] = _with_parent(row, company, index)
        report.finish(row)
    return loaded


def _parse_account(row: _Row, seen: dict[str, _Row]) -> Company | None:
    name = row.cells.get("account", "")
    if not name:
        row.error("missing_account", "account: expected a company name, found an empty cell")
        return None
    _check_duplicate(row, seen, company_id(name), "account")
    return Company(
        doc_id=company_id(name),
        name=name,
        sector=_correct_typo(row, "sector", KNOWN_SECTORS, lowercase=True),
        year_established=_optional_number(row, "year_established", integer=True),
        revenue_usd_millions=_optional_number(row, "revenue"),
        employees=_optional_number(row, "employees", integer=True),
        country=_correct_typo(row, "office_location", KNOWN_COUNTRIES, lowercase=False),
    )


def _with_parent(row: _Row, company: Company, index: _NameIndex) -> Company:
    parent_name = row.cells.get("subsidiary_of", "")
    if not parent_name:
        return company
    parent, repaired = index.resolve(parent_name)
    if parent is None or parent is company:
        row.warning("unknown_parent", f"subsidiary_of: expected another account in {ACCOUNTS}, found {parent_name!r}; stored as empty")
        return company
    if repaired:
        row.warning("parent_name_variant", f"subsidiary_of: found {parent_name!r}, matched account {parent.name!r}")
    return dataclasses.replace(company, parent_company_id=parent.doc_id)


def _parse_products(folder: Path, report: _Report) -> dict[str, Product]:
    """Return the loaded products by name."""
    loaded: dict[str, Product] = {}
    seen: dict[str, _Row] = {}
    for row in _read_rows(folder, PRODUCTS, report):
        product = _parse_product(row, seen)
        if product is not None and not row.rejected:
            loaded[product.name] = product
        report.finish(row)
    return loaded


def _parse_product(row: _Row, seen: dict[str, _Row]) -> Product | None:
    name = row.cells.get("product", "")
    if not name:
        row.error("missing_product", "product: expected a product name, found an empty cell")
        return None
    _check_duplicate(row, seen, product_id(name), "product")
    price_text = row.cells.get("sales_price", "")
    price = _parse_number(price_text)
    if price is None or price < 0:
        row.error("invalid_price", f"sales_price: expected a non-negative number, found {price_text!r}")
        return None
    return Product(doc_id=product_id(name), name=name, series=row.cells.get("series") or None, list_price=price)


def _parse_teams(folder: Path, report: _Report) -> dict[str, Member]:
    """Return members by name: each loaded agent plus one record per manager."""
    agents: dict[str, Member] = {}
    manager_offices: dict[str, set[str | None]] = {}
    seen: dict[str, _Row] = {}
    for row in _read_rows(folder, TEAMS, report):
        agent = _parse_agent(row, seen)
        if agent is not None and not row.rejected:
            agents[agent.name] = agent
            if row.cells.get("manager"):
                manager_offices.setdefault(row.cells["manager"], set()).add(agent.regional_office)
        report.finish(row)
    return _with_managers(agents, manager_offices)


def _parse_agent(row: _Row, seen: dict[str, _Row]) -> Member | None:
    name = row.cells.get("sales_agent", "")
    if not name:
        row.error("missing_sales_agent", "sales_agent: expected an agent name, found an empty cell")
        return None
    _check_duplicate(row, seen, member_id(name), "sales_agent")
    manager = row.cells.get("manager", "")
    if not manager:
        row.warning("missing_manager", "manager: expected the agent's manager, found an empty cell; stored as empty")
    office = row.cells.get("regional_office") or None
    return Member(member_id(name), name, member_id(manager) if manager else None, office, "rep")


def _with_managers(agents: Mapping[str, Member], manager_offices: Mapping[str, set[str | None]]) -> dict[str, Member]:
    """Add a manager record per manager name; an agent who also manages becomes a manager.

    A manager's regional office is their agents' office when they all share one.
    """
    members = dict(agents)
    for name, offices in manager_offices.items():
        if name in members:
            members[name] = dataclasses.replace(members[name], role="manager")
            continue
        office = next(iter(offices)) if len(offices) == 1 else None
        members[name] = Member(member_id(name), name, None, office, "manager")
    return members


# --- sales_pipeline.csv ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _References:
    """Name lookups into the other files and the stage map."""

    companies: _NameIndex
    members: _NameIndex
    products: _NameIndex
    stages: _NameIndex


@dataclasses.dataclass(frozen=True)
class _DealFacts:
    """Validated cells of one pipeline row."""

    opportunity_id: str
    owner: Member
    product: Product
    company: Company | None
    account_name: str
    stage_id: str
    engaged: dt.datetime | None
    closed: dt.datetime | None
    close_value: float | None


def _parse_pipeline(folder: Path, report: _Report, refs: _References, settings: StageSettings) -> tuple[list[Deal], dict[str, set[str]]]:
    """Return the loaded deals and, per product name, the aliases the pipeline used."""
    deals: list[Deal] = []
    aliases: dict[str, set[str]] = {}
    seen: dict[str, _Row] = {}
    for row in _read_rows(folder, PIPELINE, report):
        facts = _deal_facts(row, seen, refs, aliases)
        deal = None if facts is None else _build_deal(row, facts, settings)
        if deal is not None and not row.rejected:
            deals.append(deal)
        report.finish(row)
    return deals, aliases


def _deal_facts(row: _Row, seen: dict[str, _Row], refs: _References, aliases: dict[str, set[str]]) -> _DealFacts | None:
    """Check each cell of a pipeline row, recording every problem on the row."""
    if not row.record_id:
        row.error("missing_opportunity_id", "opportunity_id: expected an id, found an empty cell")
    else:
        _check_duplicate(row, seen, row.record_id, "opportunity_id")
    owner = _resolve_owner(row, refs.members)
    product = _resolve_product(row, refs.products, aliases)
    company = _resolve_account(row, refs.companies)
    stage_id = _resolve_stage(row, refs.stages)
    engaged = _date_cell(row, "engage_date")
    closed = _date_cell(row, "close_date")
    close_value = _close_value(row)
    if row.rejected:
        return None
    account_name = company.name if company is not None else row.cells.get("account", "")
    return _DealFacts(row.record_id, owner, product, company, account_name, stage_id, engaged, closed, close_value)


def _resolve_owner(row: _Row, members: _NameIndex) -> Member | None:
    name = row.cells.get("sales_agent", "")
    if not name:
        row.error("missing_sales_agent", "sales_agent: expected an agent name, found an empty cell")
        return None
    member, repaired = members.resolve(name)
    if member is None:
        row.error("unknown_sales_agent", f"sales_agent: expected an agent listed in {TEAMS}, found {name!r}")
    elif repaired:
        row.warning("sales_agent_name_variant", f"sales_agent: found {name!r}, matched agent {member.name!r}")
    return member


def _resolve_product(row: _Row, products: _NameIndex, aliases: dict[str, set[str]]) -> Product | None:
    name = row.cells.get("product", "")
    if not name:
        row.error("missing_product", "product: expected a product name, found an empty cell")
        return None
    product, repaired = products.resolve(name)
    if product is None:
        row.error("unknown_product", f"product: expected a product listed in {PRODUCTS}, found {name!r}")
    elif repaired:
        aliases.setdefault(product.name, set()).add(name)
        row.warning("product_alias", f"product: expected a name listed in {PRODUCTS}, found {name!r}; loaded as {product.name!r}")
    return product


def _resolve_account(row: _Row, companies: _NameIndex) -> Company | None:
    name = row.cells.get("account", "")
    if not name:
        return None
    company, repaired = companies.resolve(name)
    if company is None:
        row.warning("unknown_account", f"account: expected an account listed in {ACCOUNTS}, found {name!r}; loaded without a company")
    elif repaired:
        row.warning("account_name_variant", f"account: found {name!r}, matched account {company.name!r}")
    return company


def _resolve_stage(row: _Row, stages: _NameIndex) -> str | None:
    text = row.cells.get("deal_stage", "")
    stage_id, repaired = stages.resolve(text)
    if stage_id is None:
        row.error("unknown_deal_stage", f"deal_stage: expected one of {', '.join(stages.names())}, found {text!r}")
    elif repaired:
        row.warning("deal_stage_variant", f"deal_stage: found {text!r}, mapped to stage {stage_id!r}")
    return stage_id


def _close_value(row: _Row) -> float | None:
    text = row.cells.get("close_value", "")
    if not text:
        return None
    value = _parse_number(text)
    if value is None or value < 0:
        row.error("invalid_close_value", f"close_value: expected a non-negative number, found {text!r}")
    return value


def _build_deal(row: _Row, facts: _DealFacts, settings: StageSettings) -> Deal | None:
    """Apply the stage rules to validated cells; return None when the row is rejected."""
    status = settings.stage_status[facts.stage_id]
    if status == "open":
        facts = _drop_close_fields(row, facts)
    else:
        _check_closed(row, facts, status)
    if row.rejected:
        return None

    history = _history(facts, status, settings)
    last_activity = facts.closed or facts.engaged
    is_open = status == "open"
    return Deal(
        doc_id=deal_id(facts.opportunity_id),
        name=f"{facts.account_name or UNKNOWN_ACCOUNT_NAME} – {facts.product.name}",
        external_id=facts.opportunity_id,
        company_id=facts.company.doc_id if facts.company is not None else None,
        owner_id=facts.owner.doc_id,
        product_id=facts.product.doc_id,
        stage_id=facts.stage_id,
        status=status,
        amount=facts.product.list_price if is_open else (facts.close_value or 0.0),
        amount_is_estimate=is_open,
        win_probability=settings.win_probabilities[facts.stage_id],
        engaged_at=facts.engaged,
        closed_at=facts.closed,
        created_at=facts.engaged,
        stage_entered_at=history[-1].entered_at,
        last_activity_at=last_activity,
        stale_due_at=_stale_due(row, facts.stage_id, last_activity, settings) if is_open else None,
        history=history,
    )


def _drop_close_fields(row: _Row, facts: _DealFacts) -> _DealFacts:
    """Ignore a close date or value on an open deal, with a warning."""
    found = [row.cells[column] for column in ("close_date", "close_value") if row.cells.get(column)]
    if not found:
        return facts
    row.warning(
        "close_fields_on_open_deal",
        f"deal_stage {row.cells['deal_stage']!r} is open: expected empty close_date and close_value, found {found!r}; ignored",
    )
    return dataclasses.replace(facts, closed=None, close_value=None)


def _check_closed(row: _Row, facts: _DealFacts, status: str) -> None:
    """Check the dates and value of a won or lost deal."""
    if facts.closed is None:
        row.warning("missing_close_date", f"close_date: expected the date the deal was {status}, found an empty cell; stored as empty")
    elif facts.engaged is not None and facts.closed < facts.engaged:
        row.error("close_before_engage", f"close_date: expected a date on or after engage_date {row.cells['engage_date']}, found {row.cells['close_date']}")
    if not row.cells.get("account"):
        row.warning("missing_account", f"account: expected the customer of a {status} deal, found an empty cell; loaded without a company")
    if status == "won" and not facts.close_value:
        row.error("won_without_value", f"close_value: expected a positive amount for a won deal, found {row.cells.get('close_value', '')!r}")
    elif status == "lost" and facts.close_value is None:
        row.warning("missing_close_value", "close_value: expected an amount for a lost deal, found an empty cell; stored as 0")


def _history(facts: _DealFacts, status: str, settings: StageSettings) -> tuple[StageEntry, ...]:
    """Return the known stage transitions, ending with the current stage.

    A closed deal with an engage date passed through the engaged stage first.
    An open deal entered its current stage at the engage date, or at an unknown time.
    """
    if status == "open":
        return (StageEntry(facts.stage_id, facts.engaged),)
    entries = []
    engaged_stage = settings.stage_map.get(ENGAGED_EXPORT_STAGE)
    if facts.engaged is not None and engaged_stage is not None and engaged_stage != facts.stage_id:
        entries.append(StageEntry(engaged_stage, facts.engaged))
    entries.append(StageEntry(facts.stage_id, facts.closed))
    return tuple(entries)


def _stale_due(row: _Row, stage_id: str, last_activity: dt.datetime | None, settings: StageSettings) -> dt.datetime | None:
    limit = settings.stage_limits.get(stage_id)
    if limit is None:
        return None
    if last_activity is None:
        row.warning("no_activity_date", NO_ACTIVITY_MESSAGE)
        return None
    return last_activity + dt.timedelta(days=limit)


# --- Entry points ------------------------------------------------------------------


def parse_export(
    folder: Path,
    stage_map: Mapping[str, str] | None = None,
    *,
    stage_limits: Mapping[str, int | None],
    win_probabilities: Mapping[str, float],
    stage_status: Mapping[str, str],
) -> ImportPlan:
    """Parse the four export files in ``folder`` into an import plan.

    Args:
        folder: Folder with accounts.csv, products.csv, sales_teams.csv and sales_pipeline.csv.
        stage_map: Export ``deal_stage`` to pipeline stage id; defaults to ``DEFAULT_STAGE_MAP``.
        stage_limits: Stage id to ``stale_after_days``, or None for no limit.
        win_probabilities: Stage id to win probability.
        stage_status: Stage id to ``open``, ``won`` or ``lost``.

    Returns:
        The records to write and a report line for every rejected or repaired row.

    Raises:
        ExportFormatError: a file is missing or empty, or its header lacks a required column.
        ConfigError: the stage map names a stage id that the pipeline settings lack.
    """
    folder = Path(folder)
    settings = _settings(stage_map, stage_limits, win_probabilities, stage_status)
    _check_files(folder)
    report = _Report()
    companies = _parse_accounts(folder, report)
    products = _parse_products(folder, report)
    members = _parse_teams(folder, report)
    refs = _References(_index(companies), _index(members), _index(products), _index(settings.stage_map))
    deals, aliases = _parse_pipeline(folder, report, refs, settings)
    return ImportPlan(
        companies=tuple(companies.values()),
        members=tuple(members.values()),
        products=tuple(dataclasses.replace(p, aliases=tuple(sorted(aliases.get(p.name, ())))) for p in products.values()),
        deals=tuple(deals),
        report=report.sorted_lines(),
        counts=report.counts,
    )


def plan_from_config(folder: Path, config: CrmConfig, stage_map: Mapping[str, str] | None = None) -> ImportPlan:
    """Parse an export with the pipeline settings of a loaded configuration."""
    stages = config.pipeline.stages
    return parse_export(
        folder,
        stage_map,
        stage_limits={stage.id: stage.stale_after_days for stage in stages},
        win_probabilities={stage.id: stage.win_probability for stage in stages},
        stage_status={stage.id: stage.status for stage in stages},
    )


def _settings(
    stage_map: Mapping[str, str] | None,
    stage_limits: Mapping[str, int | None],
    win_probabilities: Mapping[str, float],
    stage_status: Mapping[str, str],
) -> StageSettings:
    chosen = dict(DEFAULT_STAGE_MAP if stage_map is None else stage_map)
    for export_stage, stage_id in chosen.items():
        if stage_id not in stage_status or stage_id not in win_probabilities:
            raise ConfigError(
                f"stage map: export stage {export_stage!r} maps to unknown stage id {stage_id!r}; expected one of {sorted(stage_status)}"
            )
    return StageSettings(chosen, dict(stage_limits), dict(win_probabilities), dict(stage_status))


def _check_files(folder: Path) -> None:
    missing = [name for name in EXPORT_COLUMNS if not (folder / name).is_file()]
    if missing:
        expected = "; ".join(f"{name}: {', '.join(EXPORT_COLUMNS[name])}" for name in missing)
        raise ExportFormatError(f"missing export file(s) {', '.join(missing)} in {str(folder)!r}; expected CSV files with columns {expected}")


def _index(values: Mapping[str, Any]) -> _NameIndex:
    index = _NameIndex()
    for name, value in values.items():
        index.add(name, value)
    return index


REPORT_COLUMNS = ("file", "row", "record_id", "level", "code", "message")


def write_report(lines: tuple[ReportLine, ...] | list[ReportLine], path: Path) -> None:
    """Write report lines to a UTF-8 CSV file with a header row."""
    with Path(path).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(REPORT_COLUMNS)
        for line in lines:
            writer.writerow(dataclasses.astuple(line))
