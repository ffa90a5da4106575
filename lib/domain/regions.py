"""Sales regions of Taiwan, derived from an address field or a phone number."""

from __future__ import annotations

import phonenumbers
from phonenumbers import PhoneNumberType

_REGION_WORDS = {
    "north": ("台北", "臺北", "新北", "基隆", "桃園", "新竹", "宜蘭", "taipei", "new taipei", "keelung",
              "taoyuan", "hsinchu", "yilan", "north"),
    "central": ("台中", "臺中", "彰化", "南投", "苗栗", "雲林", "taichung", "changhua", "nantou", "miaoli",
                "yunlin", "central"),
    "south": ("台南", "臺南", "高雄", "嘉義", "屏東", "澎湖", "tainan", "kaohsiung", "chiayi", "pingtung",
              "penghu", "south"),
    "east": ("花蓮", "台東", "臺東", "hualien", "taitung", "east"),
}
# Number types that are not tied to a place, so they imply no region.
_NON_GEOGRAPHIC_TYPES = frozenset(
    {
        PhoneNumberType.MOBILE, PhoneNumberType.TOLL_FREE, PhoneNumberType.PREMIUM_RATE,
        PhoneNumberType.SHARED_COST, PhoneNumberType.VOIP, PhoneNumberType.PERSONAL_NUMBER,
        PhoneNumberType.PAGER, PhoneNumberType.UAN, PhoneNumberType.VOICEMAIL,
    }
)  # fmt: skip
# Taiwanese national-number prefixes after +886, longest match wins. A None region
# marks a non-geographic range: premium rate 020x, UAN 050x, VoIP 070x, toll-free
# 080x, and mobile and personal numbers 09xx. The None rows matter only for numbers
# that the phonenumbers metadata cannot classify, because number_type catches the rest.
_AREA_CODES = (
    ("2", "north"), ("3", "north"), ("37", "central"), ("4", "central"), ("49", "central"),
    ("5", "south"), ("6", "south"), ("7", "south"), ("8", "south"), ("89", "east"), ("38", "east"),
    ("20", None), ("50", None), ("70", None), ("80", None), ("9", None),
)


def region_of(region_field: str | None, phone_e164: str | None) -> str | None:
    """Return the sales region named by the region field, else implied by a Taiwanese landline.

    Returns None when neither gives a region, for example with no region field and a
    mobile, toll-free or foreign number.
    """
    if region_field:
        text = region_field.casefold()
        for region, words in _REGION_WORDS.items():
            if any(word in text for word in words):
                return region
    if phone_e164 and phone_e164.startswith("+886"):
        return _region_of_taiwan_phone(phone_e164)
    return None


def _region_of_taiwan_phone(phone_e164: str) -> str | None:
    try:
        number = phonenumbers.parse(phone_e164)
    except phonenumbers.NumberParseException:
        return None
    if phonenumbers.number_type(number) in _NON_GEOGRAPHIC_TYPES:
        return None

    national = phone_e164[4:]
    best_prefix = ""
    best_region = None
    for prefix, region in _AREA_CODES:
        if national.startswith(prefix) and len(prefix) > len(best_prefix):
            best_prefix, best_region = prefix, region
    return best_region
