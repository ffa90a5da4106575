import pytest

from lib.domain.regions import region_of


@pytest.mark.parametrize(
    ("region_field", "region"),
    [("台北市大安區", "north"), ("臺中市", "central"), ("Kaohsiung", "south"), ("花蓮縣", "east"),
     ("NEW TAIPEI", "north"), ("Taichung City", "central")],
)
def test_region_field_names_region(region_field, region):
    assert region_of(region_field, None) == region


@pytest.mark.parametrize(
    ("phone", "region"),
    [("+886223456789", "north"), ("+88637123456", "central"), ("+886423456789", "central"),
     ("+88662345678", "south"), ("+88638123456", "east"), ("+88689123456", "east")],
)
def test_landline_implies_region(phone, region):
    assert region_of(None, phone) == region


def test_mobile_number_has_no_region():
    assert region_of(None, "+886912345678") is None


@pytest.mark.parametrize(
    "phone",
    ["+886800000123", "+886809000123", "+886204123456", "+886501234567", "+88670123456789", "+886400010123"],
)
def test_non_geographic_number_has_no_region(phone):
    assert region_of(None, phone) is None


def test_unclassified_toll_free_prefix_has_no_region():
    assert region_of(None, "+886808000123") is None


def test_pingtung_landline_is_south():
    assert region_of(None, "+88687123456") == "south"


def test_foreign_number_has_no_region():
    assert region_of(None, "+6561234567") is None


def test_region_field_wins_over_phone():
    assert region_of("高雄", "+886223456789") == "south"


def test_unknown_field_falls_back_to_phone():
    assert region_of("Singapore", "+886223456789") == "north"


def test_nothing_known_gives_none():
    assert region_of(None, None) is None
