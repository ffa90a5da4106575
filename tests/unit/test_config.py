import copy

import pytest
import yaml

from lib.config.loader import DEFAULT_PATH, load_config, parse_config
from lib.config.schema import CrmConfig, LocalizedText
from lib.errors import ConfigError

SAMPLE = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))


def sample() -> dict:
    return copy.deepcopy(SAMPLE)


def config_error(data: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(yaml.safe_dump(data, allow_unicode=True), origin="crm.yaml")
    return str(caught.value)


def test_sample_config_loads():
    config = load_config(DEFAULT_PATH)

    assert isinstance(config, CrmConfig)
    assert config.organization.time_zone == "Asia/Taipei"
    assert config.routing.default_team == "north"
    assert [team.id for team in config.teams] == ["north", "south", "key-accounts"]


def test_config_path_from_environment(monkeypatch):
    monkeypatch.setenv("CRM_CONFIG", str(DEFAULT_PATH))

    assert load_config().organization.currency == "TWD"


def test_missing_config_file_names_path(tmp_path):
    missing = tmp_path / "absent.yaml"

    with pytest.raises(ConfigError) as caught:
        load_config(missing)

    assert str(missing) in str(caught.value)
    assert "CRM_CONFIG" in str(caught.value)


def test_unknown_strategy_names_path_and_choices():
    data = sample()
    data["teams"][0]["strategy"] = "random"

    message = config_error(data)

    assert "teams[0].strategy" in message
    assert "'random'" in message
    for allowed in ("round_robin", "weighted", "least_open"):
        assert allowed in message


def test_unknown_fallback_owner_names_path():
    data = sample()
    data["routing"]["fallback_owner"] = "rep-nobody"

    message = config_error(data)

    assert "routing.fallback_owner" in message
    assert "rep-nobody" in message
    assert "mgr-chen" in message


def test_unknown_member_team_names_path():
    data = sample()
    data["members"][2]["team"] = "west"

    message = config_error(data)

    assert "members[2].team" in message
    assert "'west'" in message


def test_bad_time_zone_names_path():
    data = sample()
    data["organization"]["time_zone"] = "Asia/Taipeh"

    message = config_error(data)

    assert "organization.time_zone" in message
    assert "Asia/Taipeh" in message
    assert "IANA" in message


def test_bad_member_time_zone_names_path():
    data = sample()
    data["members"][0]["time_zone"] = "GMT+8"

    assert "members[0].time_zone" in config_error(data)


def test_unknown_extra_key_rejected():
    data = sample()
    data["organization"]["colour"] = "blue"

    message = config_error(data)

    assert "organization.colour" in message
    assert "Extra inputs are not permitted" in message


def test_unknown_top_level_key_rejected():
    data = sample()
    data["routng"] = {}

    assert "routng" in config_error(data)


def test_invalid_yaml_raises_config_error():
    with pytest.raises(ConfigError) as caught:
        parse_config("teams: [unclosed", origin="crm.yaml")

    assert "invalid YAML" in str(caught.value)


def test_non_mapping_document_rejected():
    with pytest.raises(ConfigError) as caught:
        parse_config("- a\n- b\n", origin="crm.yaml")

    assert "expected a mapping" in str(caught.value)


def test_working_hours_end_before_start_rejected():
    data = sample()
    data["members"][2]["working_hours"] = {"start": "18:00", "end": "09:00"}

    assert "members[2].working_hours" in config_error(data)


def test_localized_text_picks_locale():
    text = LocalizedText.model_validate({"zh-TW": "新進商機", "en": "New"})

    assert text.get("zh-TW") == "新進商機"
    assert text.get("en") == "New"


def test_localized_text_unknown_locale_uses_chinese():
    text = LocalizedText.model_validate({"zh-TW": "新進商機", "en": "New"})

    assert text.get("ja") == "新進商機"
