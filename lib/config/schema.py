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
    "email",
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


def _text(zh_tw: str, en: str) -> LocalizedText:
    return LocalizedText(**{"zh-TW": zh_tw, "en": en})


DEFAULT_NO_REPLY_REMINDER = EmailTemplate(
    subject=_text("提醒：{name} 尚未回覆", "Reminder: {name} has not replied"),
    body=_text("{rep_name} 您好：\n\n{name}（{company}）在 {days} 個工作天內尚未回覆，建議再次跟進。\n",
               "Hello {rep_name},\n\n{name} ({company}) has not replied in {days} business days. "
               "Consider following up.\n"),
)
DEFAULT_STALE_DIGEST = EmailTemplate(
    subject=_text("停滯商機摘要（{date}）：{count} 筆", "Stale deals digest ({date}): {count}"),
    body=_text("{rep_name} 您好：\n\n以下商機已超過階段停滯期限且沒有排定下一步：\n\n{deals}\n",
               "Hello {rep_name},\n\nThese deals are past their stage's idle limit and have no next step "
               "scheduled:\n\n{deals}\n"),
)


class SequenceStep(_Model):
    """One email of a nurture sequence, sent ``delay_business_days`` after the previous one."""

    delay_business_days: int = Field(ge=0, le=90)
    template: EmailTemplate


class EnrolmentRule(_Model):
    """Conditions that all must hold for a lead to enrol; an omitted condition always holds."""

    sources: tuple[str, ...] = ()
    min_score: float | None = None
    max_score: float | None = None
    stages: tuple[str, ...] = ()


class Sequence(_Model):
    id: str
    name: LocalizedText
    enrol: EnrolmentRule = EnrolmentRule()
    steps: tuple[SequenceStep, ...] = Field(min_length=1, max_length=20)
    active: bool = True

    _id = field_validator("id")(_check_id)


class Sending(_Model):
    """Limits on automated email per sender mailbox.

    Google documents a daily sending limit of about 2,000 messages per Workspace
    user, so the default cap leaves room for the rep's own mail.
    """

    daily_cap_per_mailbox: int = Field(default=1500, ge=1, le=2000)
    per_minute_per_mailbox: int = Field(default=20, ge=1, le=600)


class StaleAlerts(_Model):
    """The daily stale-deal check; Cloud Scheduler calls it at ``run_at`` local time."""

    run_at: dt.time = dt.time(8, 0)
    time_zone: str | None = None
    job_name: str = Field(default="stale-deals", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    notify_managers: bool = True
    max_deals_listed: int = Field(default=50, ge=1, le=500)
    digest: EmailTemplate = DEFAULT_STALE_DIGEST

    @field_validator("time_zone")
    @classmethod
    def _valid_zone(cls, value: str | None) -> str | None:
        return None if value is None else _check_time_zone(value)


class Signature(_Model):
    scheme: SignatureScheme
    tolerance_seconds: int = Field(default=300, ge=1)
    header: str | None = None
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="URL the vendor posts to, for schemes that sign the URL (HubSpot v3) when a proxy "
                    "in front of the function changes the scheme, host or path.",
    )


class Source(_Model):
    """One intake source, served at ``/intake_webhook/<id>`` (or the form intake)."""

    id: str
    vendor: Vendor
    name: str | LocalizedText | None = None
    signature: Signature
    field_map: dict[str, str] = {}
    checkbox_options: dict[str, tuple[str, ...]] = Field(
        default={},
        description="Known options per question, so answers joined with ', ' split correctly.",
    )
    locale: Locale | None = None
    max_body_bytes: int = Field(default=256 * 1024, ge=1024, le=10 * 1024 * 1024)

    _id = field_validator("id")(_check_id)

    def display_name(self, locale: str) -> str:
        """Return the source's name as a lead or rep reads it, in ``locale``."""
        if isinstance(self.name, LocalizedText):
            return self.name.get(locale)
        return self.name or self.id

    @property
    def secret_env(self) -> str:
        """Name of the environment variable that carries this source's secret."""
        return f"CRM_SECRET_{self.id.upper().replace('-', '_')}"


class Intake(_Model):
    duplicate_window_seconds: int = Field(default=600, ge=1)
    field_synonyms: dict[str, tuple[str, ...]] = {}


DEFAULT_NO_REPLY_PATTERNS = (
    "noreply@", "no-reply@", "no_reply@", "donotreply@", "do-not-reply@",
    "mailer-daemon@", "postmaster@", "notifications@", "notification@",
)


# Free webmail domains. A Reply-To on one of these while From is on another
# domain is SpamAssassin's FREEMAIL_FORGED_REPLYTO signal.
DEFAULT_FREEMAIL_DOMAINS = (
    "gmail.com", "googlemail.com", "yahoo.com", "hotmail.com", "outlook.com", "live.com", "aol.com",
    "icloud.com", "qq.com", "163.com", "126.com", "sina.com", "yeah.net",
)


class MailCapture(_Model):
    """When an unknown sender's personal message becomes a lead.

    Attributes:
        enabled: Create leads from unknown senders at all.
        ignore_internal: Skip senders in ``organization.internal_domains``.
        ignore_senders: Address prefixes (``noreply@``) or whole addresses of
            relays and automated senders, compared case-insensitively.
        mailbox_aliases: Other addresses that deliver to the connected
            mailboxes, such as a ``sales@`` group. A message counts as
            addressed to the mailbox when its To or Cc contains the mailbox
            or one of these.
        max_age_days: Messages older than this many days are logged but never
            become leads; None disables the limit.
        freemail_domains: Free webmail domains for the Reply-To spam signal.
    """

    enabled: bool = True
    ignore_internal: bool = True
    ignore_senders: tuple[str, ...] = DEFAULT_NO_REPLY_PATTERNS
    mailbox_aliases: tuple[str, ...] = ()
    max_age_days: int | None = Field(default=30, ge=1)
    freemail_domains: tuple[str, ...] = DEFAULT_FREEMAIL_DOMAINS


class StageOnReply(_Model):
    """Move a deal when the prospect replies: from any of ``from_stages`` to ``to``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_stages: tuple[str, ...] = Field(default=("new",), alias="from")
    to: str = "contacted"


class Mail(_Model):
    """Gmail push sync: connected mailboxes and what their mail does.

    Attributes:
        mailboxes: Connected mailboxes, as member ids or addresses.
        capture: Rules for turning unknown senders into leads.
        stage_on_reply: Stage move on a prospect's reply; None disables it.
        full_sync_days: Window of the full sync that runs when the history
            cursor has expired.
        full_sync_max_messages: Maximum messages one full sync fetches.
        pubsub_topic: Topic that ``users.watch`` publishes to, as
            ``projects/<project>/topics/<topic>``; ``{project}`` is replaced
            with the project id.
        lease_seconds: How long one sync may hold a mailbox before another may take it.
    """

    mailboxes: tuple[str, ...] = ()
    capture: MailCapture = MailCapture()
    stage_on_reply: StageOnReply | None = StageOnReply()
    full_sync_days: int = Field(default=7, ge=1, le=365)
    full_sync_max_messages: int = Field(default=200, ge=1, le=5000)
    pubsub_topic: str = "projects/{project}/topics/crm-gmail-push"
    lease_seconds: int = Field(default=300, ge=30, le=3600)


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
    mail: Mail = Mail()
    sequences: tuple[Sequence, ...] = ()
    sending: Sending = Sending()
    stale: StaleAlerts = StaleAlerts()

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
        self._check_sequences()
        self._check_mail(member_ids)
        return self

    def _check_mail(self, member_ids: set[str]) -> None:
        for index, entry in enumerate(self.mail.mailboxes):
            if "@" not in entry and entry not in member_ids:
                raise ValueError(f"mail.mailboxes[{index}]: unknown member {entry!r}; "
                                 f"use a member id ({sorted(member_ids)}) or an email address")
        rule = self.mail.stage_on_reply
        stage_ids = [stage.id for stage in self.pipeline.stages]
        for stage_id in (*rule.from_stages, rule.to) if rule else ():
            if stage_id not in stage_ids:
                raise ValueError(f"mail.stage_on_reply: unknown stage {stage_id!r}, expected one of {stage_ids}")

    def _check_sequences(self) -> None:
        sequence_ids = [sequence.id for sequence in self.sequences]
        if len(sequence_ids) != len(set(sequence_ids)):
            raise ValueError(f"sequences: ids must be unique, found {sequence_ids!r}")
        stage_ids = {stage.id for stage in self.pipeline.stages}
        for index, sequence in enumerate(self.sequences):
            unknown = sorted(set(sequence.enrol.stages) - stage_ids)
            if unknown:
                raise ValueError(f"sequences[{index}].enrol.stages: unknown stages {unknown!r}, expected some of {sorted(stage_ids)}")

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

    def sequence(self, sequence_id: str) -> Sequence | None:
        for sequence in self.sequences:
            if sequence.id == sequence_id:
                return sequence
        return None

    def connected_mailboxes(self) -> tuple[str, ...]:
        """Return the lowercased addresses of ``mail.mailboxes``, member ids resolved."""
        addresses = []
        for entry in self.mail.mailboxes:
            address = entry if "@" in entry else self.member(entry).email
            addresses.append(address.strip().lower())
        return tuple(dict.fromkeys(addresses))

    def source(self, source_id: str) -> Source | None:
        for source in self.sources:
            if source.id == source_id:
                return source
        return None
