"""Lead routing: rules pick a team, the team's strategy picks a rep.

Every strategy reads one small load record per member and the caller writes back
only the chosen member's record, so no document is written by every lead.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence

from lib.config.schema import CrmConfig, Member, RuleCondition

DEFAULT_TEAM_RULE = "default-team"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


@dataclasses.dataclass(frozen=True)
class MemberLoad:
    """A member's routing counters, stored one document per member."""

    open_leads: int = 0
    assigned_total: int = 0
    last_assigned_at: dt.datetime | None = None


@dataclasses.dataclass(frozen=True)
class RoutingFacts:
    source_id: str
    region: str | None
    products: tuple[str, ...]
    score: float


@dataclasses.dataclass(frozen=True)
class Assignment:
    """Who owns a lead, and the rule and strategy that decided it."""

    team_id: str
    owner_id: str
    rule_id: str
    strategy: str
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def used_fallback(self) -> bool:
        return self.strategy == "fallback_owner"


def condition_holds(condition: RuleCondition, facts: RoutingFacts) -> bool:
    """Return True when every condition that is set holds for ``facts``."""
    if condition.sources and facts.source_id not in condition.sources:
        return False
    if condition.regions and facts.region not in condition.regions:
        return False
    if condition.products:
        wanted = {product.casefold() for product in condition.products}
        if not any(product.casefold() in wanted for product in facts.products):
            return False
    if condition.min_score is not None and facts.score < condition.min_score:
        return False
    if condition.max_score is not None and facts.score > condition.max_score:
        return False
    return True


def choose_team(config: CrmConfig, facts: RoutingFacts) -> tuple[str, str]:
    """Return ``(team_id, rule_id)`` of the first routing rule that matches."""
    for rule in config.routing.rules:
        if condition_holds(rule.when, facts):
            return rule.team, rule.id
    return config.routing.default_team, DEFAULT_TEAM_RULE


def team_candidates(config: CrmConfig, team_id: str) -> tuple[Member, ...]:
    """Return the reps of a team, the members whose load the strategy reads."""
    return tuple(member for member in config.team_members(team_id) if member.role == "rep")


def _available(
    members: Sequence[Member], loads: Mapping[str, MemberLoad], day: dt.date
) -> tuple[list[Member], list[tuple[str, str]]]:
    available, skipped = [], []
    for member in members:
        load = loads.get(member.id, MemberLoad())
        if member.is_off(day):
            skipped.append((member.id, "off"))
        elif load.open_leads >= member.capacity:
            skipped.append((member.id, f"at capacity ({load.open_leads}/{member.capacity})"))
        else:
            available.append(member)
    return available, skipped


def _pick(strategy: str, members: list[Member], loads: Mapping[str, MemberLoad]) -> Member:
    order = {member.id: index for index, member in enumerate(members)}

    def load(member: Member) -> MemberLoad:
        return loads.get(member.id, MemberLoad())

    def last(member: Member) -> dt.datetime:
        return load(member).last_assigned_at or _EPOCH

    if strategy == "weighted":
        # Smooth weighted round robin: the next lead goes to whoever is furthest below
        # their share, so weights 2:1 give the pattern A, B, A, A, B, A.
        return min(members, key=lambda m: ((load(m).assigned_total + 1) / m.weight, last(m), order[m.id]))
    if strategy == "least_open":
        return min(members, key=lambda m: (load(m).open_leads, last(m), order[m.id]))
    return min(members, key=lambda m: (last(m), order[m.id]))


def route(
    config: CrmConfig,
    facts: RoutingFacts,
    loads: Mapping[str, MemberLoad],
    day: dt.date,
    *,
    preferred_owner: str | None = None,
) -> Assignment:
    """Assign a lead to a team and a rep.

    Args:
        config: Teams, members and routing rules.
        facts: What the rules look at.
        loads: Current load of every candidate member (missing means none yet).
        day: The organisation's local date, for time off.
        preferred_owner: The contact's existing owner; kept when still available.

    Returns:
        The assignment, naming the rule that chose the team and the strategy that
        chose the rep, or the fallback owner when nobody in the team is available.
    """
    team_id, rule_id = choose_team(config, facts)
    team = config.team(team_id)
    available, skipped = _available(team_candidates(config, team_id), loads, day)

    if preferred_owner and any(member.id == preferred_owner for member in available):
        return Assignment(team_id, preferred_owner, rule_id, "existing_owner", tuple(skipped))
    if not available:
        return Assignment(team_id, config.routing.fallback_owner, rule_id, "fallback_owner", tuple(skipped))
    chosen = _pick(team.strategy, available, loads)
    return Assignment(team_id, chosen.id, rule_id, team.strategy, tuple(skipped))
