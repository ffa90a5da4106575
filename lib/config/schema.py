"""The configuration file's schema: one YAML document validated at start.

Every model forbids unknown keys, so a misspelt key fails loudly instead of
being ignored.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Locale = Literal["zh-TW", "en"]
LOCALES: tuple[str, ...] = ("zh-TW", "en")
Role = Literal["admin", "manager", "rep"]
Strategy = Literal["round_robin", "weighted", "least_open"]
Vendor = Literal[
    "google_forms",
    "webflow",
    "cf7",
    "gravityforms",
    "elementor",
    "typeform",
    "tally",
    "jotform",
    "hubspot",
    "html",
]
SignatureScheme = Literal[
    "crm_hmac",
    "webflow",
    "typeform",
    "tally",
    "hubspot_v3",
    "shared_secret",
    "none",
]
_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_id(value: str) -> str:
    if not _ID_PATTERN.match(value):
        raise ValueError(f"must match {_ID_PATTERN.pattern} (lower case letters, digits, '_' and '-')")
    return value


def _check_time_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {value!r}, e.g. 'Asia/Taipei'") from exc
    return value


class LocalizedText(_Model):
    """The same text in every supported language."""

    zh_TW: str = Field(alias="zh-TW")
    en: str

    def get(self, locale: str) -> str:
        return self.en if locale == "en" else self.zh_TW


class Organization(_Model):
    name: str
    default_locale: Locale = "zh-TW"
    time_zone: str = "Asia/Taipei"
    currency: str = Field(default="TWD", pattern=r"^[A-Z]{3}$")
    default_phone_region: str = Field(default="TW", pattern=r"^[A-Z]{2}$")
    holiday_country: str | None = Field(default="TW", pattern=r"^[A-Z]{2}$")
    extra_holidays: tuple[dt.date, ...] = ()
    extra_working_days: tuple[dt.date, ...] = ()
    internal_domains: tuple[str, ...] = ()
    sender_domain: str = Field(description="Domain used in generated Message-IDs.")

    _tz = field_validator("time_zone")(_check_time_zone)


class Stage(_Model):
    id: str
    name: LocalizedText
    win_probability: float = Field(ge=0, le=1)
    stale_after_days: int | None = Field(default=None, ge=1)
    status: Literal["open", "won", "lost"] = "open"

    _id = field_validator("id")(_check_id)


class Pipeline(_Model):
    stages: tuple[Stage, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _first_stage_is_open(self) -> Pipeline:
        if self.stages[0].status != "open":
            raise ValueError("the first stage must have status 'open': new deals start there")
        ids = [stage.id for stage in self.stages]
        if len(ids) != len(set(ids)):
            raise ValueError(f"stage ids must be unique, found {ids!r}")
        return self

    def stage(self, stage_id: str) -> Stage:
        for stage in self.stages:
            if stage.id == stage_id:
                return stage
        raise KeyError(stage_id)


class WorkingHours(_Model):
    days: tuple[int, ...] = (0, 1, 2, 3, 4)
    start: dt.time = dt.time(9, 0)
    end: dt.time = dt.time(18, 0)

    @field_validator("days")
    @classmethod
    def _valid_days(cls, days: tuple[int, ...]) -> tuple[int, ...]:
        if not days or any(day not in range(7) for day in days):
            raise ValueError("must list weekdays as 0 (Monday) to 6 (Sunday)")
        return days

    @model_validator(mode="after")
    def _start_before_end(self) -> WorkingHours:
        if self.start >= self.end:
            raise ValueError(f"start {self.start} must be before end {self.end}")
        return self


class TimeOff(_Model):
    start: dt.date
    end: dt.date


class Member(_Model):
    id: str
    name: str
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    role: Role = "rep"
    team: str | None = None
    regions: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    capacity: int = Field(default=50, ge=0)
    weight: float = Field(default=1.0, gt=0)
    time_zone: str = "Asia/Taipei"
    working_hours: WorkingHours = WorkingHours()
    locale: Locale = "zh-TW"
    time_off: tuple[TimeOff, ...] = ()
    active: bool = True
    chat_webhook_env: str | None = None
    notify_by: tuple[Literal["email", "chat"], ...] = ("email",)

    _id = field_validator("id")(_check_id)
    _tz = field_validator("time_zone")(_check_time_zone)

    def is_off(self, day: dt.date) -> bool:
        """Return True when the member is inactive or on time off that day."""
        if not self.active:
            return True
        return any(period.start <= day <= period.end for period in self.time_off)


class Team(_Model):
    id: str
    name: LocalizedText
    manager: str | None = None
    strategy: Strategy = "round_robin"

    _id = field_validator("id")(_check_id)


class RuleCondition(_Model):
    """Conditions that all must hold; an omitted condition always holds."""

    sources: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    min_score: float | None = None
    max_score: float | None = None


class RoutingRule(_Model):
    id: str
    when: RuleCondition = RuleCondition()
    team: str

    _id = field_validator("id")(_check_id)


class Routing(_Model):
    rules: tuple[RoutingRule, ...] = ()
    default_team: str
    fallback_owner: str


class FitRule(_Model):
    id: str
    field: str
    equals: tuple[str, ...] = ()
    contains: tuple[str, ...] = ()
    present: bool = False
    points: float

    @model_validator(mode="after")
    def _one_test(self) -> FitRule:
        if not (self.equals or self.contains or self.present):
            raise ValueError("a fit rule needs one of 'equals', 'contains' or 'present: true'")
        return self


class Scoring(_Model):
    half_life_days: float = Field(default=30, gt=0)
    fit: tuple[FitRule, ...] = ()
    engagement: dict[Literal["form_submission", "email_reply", "meeting", "email_inbound"], float] = {}
    hot_threshold: float = 60


class QualificationRule(_Model):
    id: str
    when: RuleCondition = RuleCondition()
    deal_name: LocalizedText | None = None


class Qualification(_Model):
    rules: tuple[QualificationRule, ...] = ()


class FollowUp(_Model):
    first_contact_within_hours: float = Field(default=4, gt=0)
    no_reply_business_days: int = Field(default=3, ge=1)
    queue: str = "crm-followups"


class EmailTemplate(_Model):
    subject: LocalizedText
    body: LocalizedText


class Templates(_Model):
    acknowledgement: EmailTemplate
    assignment: EmailTemplate
    no_reply_reminder: EmailTemplate | None = None


class Signature(_Model):
    scheme: SignatureScheme
    tolerance_seconds: int = Field(default=300, ge=1)
    header: str | None = None


class Source(_Model):
    """One intake source, served at ``/intake_webhook/<id>`` (or the form intake)."""

    id: str
    vendor: Vendor
    name: str | None = None
    signature: Signature
    field_map: dict[str, str] = {}
    checkbox_options: dict[str, tuple[str, ...]] = Field(
        default={},
        description="Known options per question, so answers joined with ', ' split correctly.",
    )
    locale: Locale | None = None
    max_body_bytes: int = Field(default=256 * 1024, ge=1024, le=10 * 1024 * 1024)

    _id = field_validator("id")(_check_id)

    @property
    def secret_env(self) -> str:
        """Name of the environment variable that carries this source's secret."""
        return f"CRM_SECRET_{self.id.upper().replace('-', '_')}"


class Intake(_Model):
    duplicate_window_seconds: int = Field(default=600, ge=1)
    field_synonyms: dict[str, tuple[str, ...]] = {}


class CrmConfig(_Model):
    organization: Organization
    pipeline: Pipeline
    teams: tuple[Team, ...] = Field(min_length=1)
    members: tuple[Member, ...] = Field(min_length=1)
    routing: Routing
    scoring: Scoring = Scoring()
    qualification: Qualification = Qualification()
    followup: FollowUp = FollowUp()
    templates: Templates
    intake: Intake = Intake()
    sources: tuple[Source, ...] = ()

    @model_validator(mode="after")
    def _references_exist(self) -> CrmConfig:
        team_ids = {team.id for team in self.teams}
        member_ids = {member.id for member in self.members}
        for index, member in enumerate(self.members):
            if member.team is not None and member.team not in team_ids:
                raise ValueError(f"members[{index}].team: unknown team {member.team!r}, expected one of {sorted(team_ids)}")
        for index, team in enumerate(self.teams):
            if team.manager is not None and team.manager not in member_ids:
                raise ValueError(f"teams[{index}].manager: unknown member {team.manager!r}, expected one of {sorted(member_ids)}")
        for index, rule in enumerate(self.routing.rules):
            if rule.team not in team_ids:
                raise ValueError(f"routing.rules[{index}].team: unknown team {rule.team!r}, expected one of {sorted(team_ids)}")
        if self.routing.default_team not in team_ids:
            raise ValueError(f"routing.default_team: unknown team {self.routing.default_team!r}, expected one of {sorted(team_ids)}")
        if self.routing.fallback_owner not in member_ids:
            raise ValueError(f"routing.fallback_owner: unknown member {self.routing.fallback_owner!r}, expected one of {sorted(member_ids)}")
        source_ids = [source.id for source in self.sources]
        if len(source_ids) != len(set(source_ids)):
            raise ValueError(f"sources: ids must be unique, found {source_ids!r}")
        return self

    def member(self, member_id: str) -> Member:
        for member in self.members:
            if member.id == member_id:
                return member
        raise KeyError(member_id)

    def team(self, team_id: str) -> Team:
        for team in self.teams:
            if team.id == team_id:
                return team
        raise KeyError(team_id)

    def team_members(self, team_id: str) -> tuple[Member, ...]:
        return tuple(member for member in self.members if member.team == team_id)

    def source(self, source_id: str) -> Source | None:
        for source in self.sources:
            if source.id == source_id:
                return source
        return None
