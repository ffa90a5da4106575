"""Step 1 of the lead pipeline: normalise a submission into lead facts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re

from lib.config.schema import CrmConfig
from lib.domain import ids, regions, routing, scoring
from lib.domain.normalize import (
    NormalizedEmail,
    PersonName,
    combine_name,
    company_domain,
    normalize_company,
    normalize_email,
    normalize_phone,
    split_name,
)
from lib.intake.types import Submission

_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


@dataclasses.dataclass(frozen=True)
class PreparedLead:
    """Facts about a submission that the pipeline computes before it reads the store."""

    submission: Submission
    event_key: str
    event_doc_ids: tuple[str, ...]
    hash_keyed: bool
    received_at: dt.datetime
    submitted_at: dt.datetime
    email: NormalizedEmail | None
    phone: str | None
    name: PersonName | None
    company_name: str | None
    company_id: str | None
    company_domain: str | None
    locale: str
    region: str | None
    products: tuple[str, ...]
    fields: dict[str, object]
    utm: dict[str, str]
    fit_points: float
    fit_rules: tuple[str, ...]
    team_id: str
    team_rule: str
    candidate_ids: tuple[str, ...]
    invalid_fields: tuple[str, ...]

    @property
    def identity_keys(self) -> tuple[str, ...]:
        """Uniqueness keys of the person: the canonical email, then the phone."""
        keys = []
        if self.email:
            keys.append(ids.key_doc_id("email", self.email.canonical))
        if self.phone:
            keys.append(ids.key_doc_id("phone", self.phone))
        return tuple(keys)

    @property
    def incomplete(self) -> bool:
        return not self.email and not self.phone

    @property
    def contact_id(self) -> str:
        """Id a new contact gets: from its first identity key, else from the event."""
        basis = self.identity_keys[0] if self.identity_keys else "event:" + self.event_key
        return "ct-" + ids.digest(basis)

    @property
    def lead_id(self) -> str:
        return "ld-" + ids.digest(self.event_key)


def _text(value: object) -> str | None:
    if isinstance(value, list):
        value = ", ".join(str(item) for item in value if item)
    text = str(value).strip() if value is not None else ""
    return text or None


def _as_list(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    return tuple(str(item).strip() for item in items if str(item).strip())


def payload_hash(submission: Submission) -> str:
    """Hash the normalised answers, so a double click hashes the same twice."""
    def norm(value: object) -> object:
        if isinstance(value, list):
            return [norm(item) for item in value]
        return " ".join(str(value).split()).casefold()

    canonical = {"fields": {k: norm(v) for k, v in sorted(submission.fields.items())},
                 "extra": {k: norm(v) for k, v in sorted(submission.extra.items())},
                 "form": submission.form_id}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def event_keys(submission: Submission, received_at: dt.datetime, window_seconds: int) -> tuple[str, tuple[str, ...], bool]:
    """Return the event key, the event document ids to check, and whether it is a hash key.

    A vendor id gives one key. Without one, the key is a hash of the source and
    the normalised payload within a time window: the current and the previous
    window's documents are both checked, so two deliveries less than one window
    apart always meet.
    """
    if submission.event_id:
        key = f"{submission.source_id}:{submission.event_id}"
        return key, ("ev-" + ids.digest(key, length=32),), False
    content = payload_hash(submission)
    bucket = int(received_at.timestamp()) // window_seconds
    key = f"{submission.source_id}:hash:{content}:{bucket}"
    previous = f"{submission.source_id}:hash:{content}:{bucket - 1}"
    return key, ("ev-" + ids.digest(key, length=32), "ev-" + ids.digest(previous, length=32)), True


def _person_name(fields: dict[str, object]) -> PersonName | None:
    full = _text(fields.get("name"))
    if full:
        return split_name(full)
    first, last = _text(fields.get("first_name")), _text(fields.get("last_name"))
    if first or last:
        return combine_name(first or "", last or "")
    return None


def choose_locale(config: CrmConfig, submission: Submission, name: PersonName | None) -> str:
    """Pick the language to write to the lead in.

    An explicit locale field wins, then the source's locale; otherwise a lead who
    wrote only Latin script gets English and everyone else the organisation default.
    """
    explicit = (_text(submission.fields.get("locale")) or "").replace("_", "-").casefold()
    if explicit.startswith("zh"):
        return "zh-TW"
    if explicit.startswith("en"):
        return "en"
    source = config.source(submission.source_id)
    if source is not None and source.locale:
        return source.locale
    written = " ".join(str(v) for v in submission.fields.values())
    if name is not None and name.script == "latin" and not _HAN.search(written):
        return "en"
    return config.organization.default_locale


def _facts(fields: dict[str, object], email: NormalizedEmail | None, domain: str | None, phone: str | None) -> dict[str, object]:
    facts = dict(fields)
    facts["business_email"] = bool(email and domain)
    facts["phone"] = phone
    return facts


def prepare(config: CrmConfig, submission: Submission, received_at: dt.datetime) -> PreparedLead:
    """Normalise a submission and compute everything that needs no stored state."""
    fields = dict(submission.fields)
    invalid: list[str] = []

    email = normalize_email(_text(fields.get("email")) or "") if fields.get("email") else None
    if fields.get("email") and email is None:
        invalid.append("email")
    phone = None
    if fields.get("phone"):
        phone = normalize_phone(_text(fields["phone"]) or "", config.organization.default_phone_region)
        if phone is None:
            invalid.append("phone")
    name = _person_name(fields)
    company_name = normalize_company(_text(fields.get("company")) or "") or None
    domain = company_domain(email) if email else None
    internal = domain in config.organization.internal_domains if domain else False
    products = _as_list(fields.get("products"))
    region = regions.region_of(_text(fields.get("region")), phone)

    fit, fit_rules = scoring.fit_score(config.scoring, _facts(fields, email, domain, phone))
    engagement = config.scoring.engagement.get("form_submission", 0.0)
    facts = routing.RoutingFacts(submission.source_id, region, products, fit + engagement)
    team_id, team_rule = routing.choose_team(config, facts)
    candidates = tuple(member.id for member in routing.team_candidates(config, team_id))

    key, doc_ids, hashed = event_keys(submission, received_at, config.intake.duplicate_window_seconds)
    return PreparedLead(
        submission=submission,
        event_key=key,
        event_doc_ids=doc_ids,
        hash_keyed=hashed,
        received_at=received_at,
        submitted_at=submission.submitted_at or received_at,
        email=email,
        phone=phone,
        name=name,
        company_name=company_name,
        company_id=ids.company_id(None if internal else domain, company_name),
        company_domain=None if internal else domain,
        locale=choose_locale(config, submission, name),
        region=region,
        products=products,
        fields=fields,
        utm={name: str(fields[name]) for name in _UTM_FIELDS if fields.get(name)},
        fit_points=fit,
        fit_rules=fit_rules,
        team_id=team_id,
        team_rule=team_rule,
        candidate_ids=candidates,
        invalid_fields=tuple(invalid),
    )
