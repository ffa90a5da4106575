import collections
import datetime as dt

import pytest

from lib.config.loader import load_config
from lib.domain.routing import DEFAULT_TEAM_RULE, MemberLoad, RoutingFacts, choose_team, route

CONFIG = load_config()
WORKING_DAY = dt.date(2026, 3, 9)
START = dt.datetime(2026, 3, 9, 1, 0, tzinfo=dt.timezone.utc)


def facts(source_id="webflow", region=None, products=(), score=30.0) -> RoutingFacts:
    return RoutingFacts(source_id, region, tuple(products), score)


def assign_many(lead_facts: RoutingFacts, count: int, loads=None) -> list[str]:
    """Route ``count`` leads, recording each assignment in the loads as the intake does."""
    loads = dict(loads or {})
    owners = []
    for index in range(count):
        assignment = route(CONFIG, lead_facts, loads, WORKING_DAY)
        owner = assignment.owner_id
        load = loads.get(owner, MemberLoad())
        loads[owner] = MemberLoad(load.open_leads + 1, load.assigned_total + 1, START + dt.timedelta(minutes=index))
        owners.append(owner)
    return owners


@pytest.mark.parametrize(
    ("lead_facts", "team", "rule"),
    [
        (facts(score=60), "key-accounts", "hot-leads-to-key-accounts"),
        (facts(region="central"), "south", "central-south-region"),
        (facts(region="south", score=75), "key-accounts", "hot-leads-to-key-accounts"),
        (facts(source_id="hubspot"), "key-accounts", "hubspot-to-key-accounts"),
        (facts(region="north"), "north", DEFAULT_TEAM_RULE),
        (facts(score=59.9), "north", DEFAULT_TEAM_RULE),
    ],
)
def test_rules_pick_team(lead_facts, team, rule):
    assert choose_team(CONFIG, lead_facts) == (team, rule)


def test_default_rule_id():
    assert route(CONFIG, facts(), {}, WORKING_DAY).rule_id == "default-team"


def test_round_robin_rotates_reps():
    assert assign_many(facts(), 4) == ["rep-wang", "rep-lin", "rep-wang", "rep-lin"]


def test_round_robin_picks_least_recent():
    loads = {"rep-wang": MemberLoad(3, 3, START), "rep-lin": MemberLoad(3, 3, START + dt.timedelta(hours=1))}

    assignment = route(CONFIG, facts(), loads, WORKING_DAY)

    assert assignment.owner_id == "rep-wang"
    assert assignment.strategy == "round_robin"


def test_weighted_two_to_one():
    owners = collections.Counter(assign_many(facts(score=80), 30))

    assert owners["rep-emily"] == 20
    assert owners["rep-kuo"] == 10


def test_weighted_strategy_named():
    assert route(CONFIG, facts(score=80), {}, WORKING_DAY).strategy == "weighted"


def test_least_open_picks_fewest():
    loads = {"rep-huang": MemberLoad(open_leads=5), "rep-tsai": MemberLoad(open_leads=2)}

    assignment = route(CONFIG, facts(region="central"), loads, WORKING_DAY)

    assert assignment.owner_id == "rep-tsai"
    assert assignment.strategy == "least_open"


def test_time_off_skips_rep():
    assignment = route(CONFIG, facts(), {}, dt.date(2026, 12, 28))

    assert assignment.owner_id == "rep-wang"
    assert assignment.skipped == (("rep-lin", "off"),)


def test_time_off_ends_after_last_day():
    loads = {"rep-wang": MemberLoad(0, 1, START)}

    assert route(CONFIG, facts(), loads, dt.date(2027, 1, 1)).owner_id == "rep-lin"


def test_full_capacity_skips_rep():
    loads = {"rep-wang": MemberLoad(open_leads=40)}

    assignment = route(CONFIG, facts(), loads, WORKING_DAY)

    assert assignment.owner_id == "rep-lin"
    assert assignment.skipped == (("rep-wang", "at capacity (40/40)"),)


def test_everyone_unavailable_uses_fallback():
    loads = {"rep-wang": MemberLoad(open_leads=40)}

    assignment = route(CONFIG, facts(), loads, dt.date(2026, 12, 28))

    assert assignment.owner_id == "mgr-chen"
    assert assignment.strategy == "fallback_owner"
    assert assignment.used_fallback
    assert assignment.team_id == "north"
    assert dict(assignment.skipped) == {"rep-wang": "at capacity (40/40)", "rep-lin": "off"}


def test_existing_owner_kept():
    assignment = route(CONFIG, facts(), {}, WORKING_DAY, preferred_owner="rep-lin")

    assert assignment.owner_id == "rep-lin"
    assert assignment.strategy == "existing_owner"


def test_existing_owner_off_not_kept():
    assignment = route(CONFIG, facts(), {}, dt.date(2026, 12, 28), preferred_owner="rep-lin")

    assert assignment.owner_id == "rep-wang"
    assert assignment.strategy == "round_robin"

