"""Lead scoring: fit points from configuration rules, engagement points that decay."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping

from lib.config.schema import FitRule, Scoring


@dataclasses.dataclass(frozen=True)
class ScoreResult:
    fit: float
    engagement: float
    matched_rules: tuple[str, ...]

    @property
    def total(self) -> float:
        return round(self.fit + self.engagement, 1)


def _values(facts: Mapping[str, object], field: str) -> list[str]:
    value = facts.get(field)
    if value is None or value == "" or value is False:
        return []
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value if item not in (None, "")]
    return [str(value)]


def _rule_matches(rule: FitRule, facts: Mapping[str, object]) -> bool:
    values = _values(facts, rule.field)
    if rule.present:
        return bool(values)
    folded = [value.casefold() for value in values]
    if rule.equals and any(value in {option.casefold() for option in rule.equals} for value in folded):
        return True
    return bool(rule.contains) and any(word.casefold() in value for word in rule.contains for value in folded)


def fit_score(scoring: Scoring, facts: Mapping[str, object]) -> tuple[float, tuple[str, ...]]:
    """Return the fit points and the ids of the rules that gave them."""
    matched = tuple(rule.id for rule in scoring.fit if _rule_matches(rule, facts))
    points = sum(rule.points for rule in scoring.fit if rule.id in matched)
    return float(points), matched


def decay(points: float, earned_at: dt.datetime, now: dt.datetime, half_life_days: float) -> float:
    """Return ``points`` halved once per ``half_life_days`` since ``earned_at``."""
    age_days = max((now - earned_at).total_seconds() / 86400.0, 0.0)
    return points * math.pow(0.5, age_days / half_life_days)


def engagement_score(
    scoring: Scoring,
    events: list[tuple[str, dt.datetime]],
    now: dt.datetime,
) -> float:
    """Sum the configured points of each ``(kind, when)`` engagement, decayed to ``now``."""
    total = 0.0
    for kind, earned_at in events:
        points = scoring.engagement.get(kind, 0.0)
        total += decay(points, earned_at, now, scoring.half_life_days)
    return round(total, 1)


def score(
    scoring: Scoring,
    facts: Mapping[str, object],
    events: list[tuple[str, dt.datetime]],
    now: dt.datetime,
) -> ScoreResult:
    """Score a lead from its facts and its engagement history."""
    fit, matched = fit_score(scoring, facts)
    return ScoreResult(fit=fit, engagement=engagement_score(scoring, events, now), matched_rules=matched)
