import datetime as dt

import pytest

from lib.config.loader import load_config
from lib.config.schema import FitRule, Scoring
from lib.domain.scoring import decay, engagement_score, fit_score, score

SAMPLE = load_config().scoring
NOW = dt.datetime(2026, 3, 9, 2, 0, tzinfo=dt.timezone.utc)


def scoring_with(*rules: dict, **settings) -> Scoring:
    return Scoring(fit=tuple(FitRule(**rule) for rule in rules), **settings)


PRESENT = {"id": "has-company", "field": "company", "present": True, "points": 10}
EQUALS = {"id": "large", "field": "company_size", "equals": ["201-500", "1000+"], "points": 25}
CONTAINS = {"id": "boss", "field": "title", "contains": ["Director", "經理"], "points": 20}


def test_present_rule_matches_value():
    assert fit_score(scoring_with(PRESENT), {"company": "台灣好物"}) == (10.0, ("has-company",))


@pytest.mark.parametrize("value", [None, "", False, [], ["", None]])
def test_present_rule_ignores_empty(value):
    assert fit_score(scoring_with(PRESENT), {"company": value}) == (0.0, ())


def test_present_rule_ignores_missing_field():
    assert fit_score(scoring_with(PRESENT), {}) == (0.0, ())


def test_equals_rule_matches_whole_value():
    assert fit_score(scoring_with(EQUALS), {"company_size": "1000+"})[0] == 25.0


def test_equals_rule_rejects_substring():
    assert fit_score(scoring_with(EQUALS), {"company_size": "201-5000"})[0] == 0.0


def test_equals_rule_ignores_case():
    rule = dict(EQUALS, equals=["Enterprise"])

    assert fit_score(scoring_with(rule), {"company_size": "ENTERPRISE"})[0] == 25.0


def test_contains_rule_matches_substring():
    assert fit_score(scoring_with(CONTAINS), {"title": "業務經理"})[0] == 20.0


def test_contains_rule_ignores_case():
    assert fit_score(scoring_with(CONTAINS), {"title": "marketing DIRECTOR"})[0] == 20.0


def test_contains_rule_checks_list_items():
    assert fit_score(scoring_with(CONTAINS), {"title": ["Engineer", "Director of Sales"]})[0] == 20.0


def test_contains_rule_without_match():
    assert fit_score(scoring_with(CONTAINS), {"title": "Engineer"}) == (0.0, ())


def test_fit_sums_matched_rules():
    facts = {"company": "Acme", "company_size": "201-500", "title": "CTO"}

    points, matched = fit_score(scoring_with(PRESENT, EQUALS, CONTAINS), facts)

    assert points == 35.0
    assert matched == ("has-company", "large")


def test_fit_rule_without_condition_rejected():
    with pytest.raises(ValueError):
        FitRule(id="empty", field="company", points=5)


def test_decay_halves_at_half_life():
    assert decay(10.0, NOW - dt.timedelta(days=30), NOW, 30) == pytest.approx(5.0)


def test_decay_quarters_at_two_half_lives():
    assert decay(10.0, NOW - dt.timedelta(days=60), NOW, 30) == pytest.approx(2.5)


def test_decay_keeps_fresh_points():
    assert decay(10.0, NOW, NOW, 30) == 10.0


def test_decay_ignores_future_time():
    assert decay(10.0, NOW + dt.timedelta(days=3), NOW, 30) == 10.0


def test_engagement_sums_kinds():
    events = [("form_submission", NOW), ("email_reply", NOW), ("meeting", NOW)]

    assert engagement_score(SAMPLE, events, NOW) == 50.0


def test_engagement_decays_each_event():
    events = [("email_reply", NOW - dt.timedelta(days=30)), ("form_submission", NOW)]

    assert engagement_score(SAMPLE, events, NOW) == 17.5


def test_engagement_ignores_unknown_kind():
    assert engagement_score(SAMPLE, [("page_view", NOW)], NOW) == 0.0


def test_score_total_adds_fit_and_engagement():
    result = score(SAMPLE, {"company": "Acme", "phone": "+886212345678"}, [("form_submission", NOW)], NOW)

    assert result.fit == 15.0
    assert result.engagement == 10.0
    assert result.total == 25.0
    assert result.matched_rules == ("has-company", "has-phone")
