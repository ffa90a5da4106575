"""Sales regions of Taiwan, derived from an address field or a phone number."""

from __future__ import annotations

_REGION_WORDS = {
    "north": ("台北", "臺北", "新北", "基隆", "桃園", "新竹", "宜蘭", "taipei", "new taipei", "keelung",
              "taoyuan", "hsinchu", "yilan", "north"),
    "central": ("台中", "臺中", "彰化", "南投", "苗栗", "雲林", "taichung", "changhua", "nantou", "miaoli",
                "yunlin", "central"),
    "south": ("台南", "臺南", "高雄", "嘉義", "屏東", "澎湖", "tainan", "kaohsiung", "chiayi", "pingtung",
              "penghu", "south"),
    "east": ("花蓮", "台東", "臺東", "hualien", "taitung", "east"),
}
# Taiwanese landline area codes after +886; mobile numbers (9xx) carry no region.
_AREA_CODES = (
    ("2", "north"), ("3", "north"), ("37", "central"), ("4", "central"), ("49", "central"),
    ("5", "south"), ("6", "south"), ("7", "south"), ("8", "south"), ("89", "east"), ("38", "east"),
)


def region_of(region_field: str | None, phone_e164: str | None) -> str | None:
    """Return the sales region named by the region field, else implied by a landline.

    Returns None when neither says anything, e.g. a mobile number and no region.
    """
    if region_field:
        text = region_field.casefold()
        for region, words in _REGION_WORDS.items():
            if any(word in text for word in words):
                return region
    if phone_e164 and phone_e164.startswith("+886"):
        national = phone_e164[4:]
        best = None
        for prefix, region in _AREA_CODES:
            if national.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
                best = (prefix, region)
        return best[1] if best and not national.startswith("9") else None
    return None
