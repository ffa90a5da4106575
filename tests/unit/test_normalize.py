"""Unit tests of contact-field normalisation."""

from __future__ import annotations

import pytest

from lib.domain.normalize import (
    NormalizedEmail,
    PersonName,
    combine_name,
    company_domain,
    company_key,
    normalize_company,
    normalize_email,
    normalize_phone,
    split_name,
)
from lib.errors import InvalidInputError

# ---------------------------------------------------------------------------
# normalize_email


def test_email_keeps_tag_outside_gmail():
    email = normalize_email("ChihHao.Huang+ads@Example.COM")

    assert email == NormalizedEmail(
        original="ChihHao.Huang+ads@Example.COM",
        address="chihhao.huang+ads@example.com",
        canonical="chihhao.huang+ads@example.com",
        domain="example.com",
    )


def test_email_gmail_canonical_drops_dots_and_tag():
    email = normalize_email("Chih.Hao+newsletter@Gmail.com")

    assert email.address == "chih.hao+newsletter@gmail.com"
    assert email.canonical == "chihhao@gmail.com"


def test_email_googlemail_maps_to_gmail():
    email = normalize_email("ya.ting@googlemail.com")

    assert email.canonical == "yating@gmail.com"
    assert email.domain == "googlemail.com"


@pytest.mark.parametrize(
    ("raw", "expected_original"),
    [
        ("  mei.lin@example.com  ", "mei.lin@example.com"),
        ("\u3000mei.lin@example.com\u3000", "mei.lin@example.com"),
        ("\xa0mei.lin@example.com\xa0", "mei.lin@example.com"),
        ("\ufeffmei.lin@example.com\u200b", "mei.lin@example.com"),
        ("\tmei.lin@example.com\n", "mei.lin@example.com"),
    ],
)
def test_email_trims_unicode_spaces(raw, expected_original):
    email = normalize_email(raw)

    assert email.original == expected_original
    assert email.address == "mei.lin@example.com"


@pytest.mark.parametrize(
    "raw",
    [
        "<mei.lin@example.com>",
        "mailto:mei.lin@example.com",
        "MAILTO:mei.lin@example.com?subject=Hello",
        "<mailto:mei.lin@example.com>",
        "mailto:<mei.lin@example.com>",
        '"Lin, Mei" <mei.lin@example.com>',
        "ｍｅｉ．ｌｉｎ＠ｅｘａｍｐｌｅ．ｃｏｍ",
        "Mei.Lin@Example.com.",
    ],
)
def test_email_unwraps_common_forms(raw):
    assert normalize_email(raw).address == "mei.lin@example.com"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "mei.lin",
        "mei.lin@",
        "@example.com",
        "mei.lin@example",
        "mei lin@example.com",
        "mei.lin@exa mple.com",
        "mei@lin@example.com",
        "mei.lin@@example.com",
        "mei..lin@example.com",
        ".mei@example.com",
        "mei.@example.com",
        '"mei lin"@example.com',
        "mei.lin@example.com, chihhao@example.com",
        "mei.lin@-example.com",
        "mei.lin@example.c0m",
        "mei.lin@example..com",
        "+tag@gmail.com",
        "mailto:",
        "<>",
        "a" * 65 + "@example.com",
    ],
)
def test_email_rejects_implausible(raw):
    assert normalize_email(raw) is None


def test_email_rejects_non_string():
    assert normalize_email(None) is None


def test_email_idn_domain_punycode_in_canonical():
    email = normalize_email("Info@Bücher.Example")

    assert email.address == "info@bücher.example"
    assert email.canonical == "info@xn--bcher-kva.example"
    assert email.domain == "xn--bcher-kva.example"


def test_email_chinese_domain_punycode():
    email = normalize_email("sales@範例.台灣")

    assert email.canonical == "sales@xn--fsqy19h.xn--kpry57d"


# ---------------------------------------------------------------------------
# company_domain


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("mei@example.com", "example.com"),
        ("mei@sales.example.com", "example.com"),
        ("mei@acme.com.tw", "acme.com.tw"),
        ("mei@mail.sales.acme.com.tw", "acme.com.tw"),
        ("taro@tokyo.acme.co.jp", "acme.co.jp"),
        ("jane@uk.acme.co.uk", "acme.co.uk"),
        ("li@acme.com.cn", "acme.com.cn"),
        ("chan@hk.acme.com.hk", "acme.com.hk"),
        ("staff@ntu.edu.tw", "ntu.edu.tw"),
        ("mei@yahoo-inc.com", "yahoo-inc.com"),
    ],
)
def test_company_domain_registrable(raw, expected):
    assert company_domain(normalize_email(raw)) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "someone@gmail.com",
        "someone@googlemail.com",
        "someone@yahoo.com.tw",
        "someone@yahoo.co.jp",
        "someone@hotmail.co.uk",
        "someone@outlook.com",
        "someone@icloud.com",
        "someone@gmx.de",
        "someone@gmx.net",
        "someone@yandex.ru",
        "someone@qq.com",
        "someone@163.com",
        "someone@hinet.net",
        "someone@msa.hinet.net",
        "someone@ms15.hinet.net",
        "someone@pchome.com.tw",
        "someone@seed.net.tw",
        "someone@naver.com",
        "someone@proton.me",
    ],
)
def test_company_domain_none_for_freemail(raw):
    assert company_domain(normalize_email(raw)) is None


def test_company_domain_none_for_bare_suffix():
    assert company_domain(normalize_email("x@com.tw")) is None


# ---------------------------------------------------------------------------
# normalize_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("(02) 5550-1234", "+886255501234"),
        ("0912-345-678", "+886912345678"),
        ("0912 345 678", "+886912345678"),
        ("+886 912 345 678", "+886912345678"),
        ("+886-2-2345-6789", "+886223456789"),
        ("０９１２－３４５－６７８", "+886912345678"),
        ("02-2345-6789#123", "+886223456789"),
        ("+886 2 2345 6789 ext. 12", "+886223456789"),
        ("+1 (415) 555-0132", "+14155550132"),
        ("886912345678", "+886912345678"),
        ("+886912000111", "+886912000111"),
        ("0912-000-222", "+886912000222"),
        ("0800-000-123", "+886800000123"),
    ],
)
def test_phone_string_to_e164(raw, expected):
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (886912345678, "+886912345678"),
        (912345678, "+886912345678"),
        (14155550132, "+14155550132"),
        (442079460958, "+442079460958"),
    ],
)
def test_phone_int_lost_plus(raw, expected):
    assert normalize_phone(raw) == expected


def test_phone_default_region_applies():
    assert normalize_phone("(415) 555-0132", default_region="US") == "+14155550132"


@pytest.mark.parametrize("raw", ["", "   ", "12", "abc", "call me", 0, -5, True, None, 3.5])
def test_phone_rejects_impossible(raw):
    assert normalize_phone(raw) is None


@pytest.mark.parametrize("raw", ["09123456789", "0912-345-6789", "8869123456789", 9123456789, "+886808000123"])
def test_phone_rejects_invalid_number(raw):
    assert normalize_phone(raw) is None


# ---------------------------------------------------------------------------
# split_name and combine_name


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("黃志豪", PersonName(full="黃志豪", given="志豪", family="黃", script="han")),
        ("  黃 志豪 ", PersonName(full="黃志豪", given="志豪", family="黃", script="han")),
        ("黃\u3000志\u3000豪", PersonName(full="黃志豪", given="志豪", family="黃", script="han")),
        ("陳怡君", PersonName(full="陳怡君", given="怡君", family="陳", script="han")),
        ("王偉", PersonName(full="王偉", given="偉", family="王", script="han")),
        ("歐陽娜娜", PersonName(full="歐陽娜娜", given="娜娜", family="歐陽", script="han")),
        ("司馬光", PersonName(full="司馬光", given="光", family="司馬", script="han")),
        ("諸葛亮", PersonName(full="諸葛亮", given="亮", family="諸葛", script="han")),
        ("上官婉兒", PersonName(full="上官婉兒", given="婉兒", family="上官", script="han")),
        ("張簡志明", PersonName(full="張簡志明", given="志明", family="張簡", script="han")),
        ("范姜文宏", PersonName(full="范姜文宏", given="文宏", family="范姜", script="han")),
        ("黃", PersonName(full="黃", given="", family="黃", script="han")),
        ("麥可·喬丹", PersonName(full="麥可·喬丹", given="麥可", family="喬丹", script="han")),
    ],
)
def test_split_name_han(raw, expected):
    assert split_name(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Chih-Hao Huang", PersonName(full="Chih-Hao Huang", given="Chih-Hao", family="Huang", script="latin")),
        ("  Mei    Lin ", PersonName(full="Mei Lin", given="Mei", family="Lin", script="latin")),
        ("Lin, Mei", PersonName(full="Mei Lin", given="Mei", family="Lin", script="latin")),
        ("John Ronald Tolkien", PersonName(full="John Ronald Tolkien", given="John Ronald", family="Tolkien", script="latin")),
        ("Ludwig van Beethoven", PersonName(full="Ludwig van Beethoven", given="Ludwig", family="van Beethoven", script="latin")),
        ("Martin Luther King Jr.", PersonName(full="Martin Luther King Jr.", given="Martin Luther", family="King Jr.", script="latin")),
        ("HUANG Chih-Hao", PersonName(full="Chih-Hao HUANG", given="Chih-Hao", family="HUANG", script="latin")),
        ("Cher", PersonName(full="Cher", given="Cher", family="", script="latin")),
        ("Ｍｅｉ Ｌｉｎ", PersonName(full="Mei Lin", given="Mei", family="Lin", script="latin")),
    ],
)
def test_split_name_latin(raw, expected):
    assert split_name(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("張 Ya-Ting", PersonName(full="Ya-Ting 張", given="Ya-Ting", family="張", script="mixed")),
        ("Ya-Ting 張", PersonName(full="Ya-Ting 張", given="Ya-Ting", family="張", script="mixed")),
        ("張Ya-Ting", PersonName(full="Ya-Ting 張", given="Ya-Ting", family="張", script="mixed")),
        ("歐陽 Nana", PersonName(full="Nana 歐陽", given="Nana", family="歐陽", script="mixed")),
        ("Vivian 張雅婷", PersonName(full="Vivian 張雅婷", given="雅婷", family="張", script="mixed")),
    ],
)
def test_split_name_mixed(raw, expected):
    assert split_name(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", "\u3000", None])
def test_split_name_rejects_blank(raw):
    with pytest.raises(InvalidInputError):
        split_name(raw)


@pytest.mark.parametrize(
    ("first", "last", "expected_full", "expected_script"),
    [
        ("志豪", "黃", "黃志豪", "han"),
        (" 志 豪 ", " 黃 ", "黃志豪", "han"),
        ("Ya-Ting", "Chang", "Ya-Ting Chang", "latin"),
        ("Ya-Ting", "張", "Ya-Ting 張", "mixed"),
        ("雅婷", "Chang", "Chang 雅婷", "mixed"),
        ("  Mary  Ann ", " van der Berg ", "Mary Ann van der Berg", "latin"),
    ],
)
def test_combine_name_display_order(first, last, expected_full, expected_script):
    name = combine_name(first, last)

    assert name.full == expected_full
    assert name.script == expected_script


def test_combine_name_keeps_parts():
    name = combine_name("Ya-Ting", "張")

    assert name.given == "Ya-Ting"
    assert name.family == "張"


def test_combine_name_whole_name_in_first_field():
    assert combine_name("黃志豪", "") == PersonName(full="黃志豪", given="志豪", family="黃", script="han")


def test_combine_name_only_family_field():
    assert combine_name("", "Huang") == PersonName(full="Huang", given="", family="Huang", script="latin")


def test_combine_name_rejects_both_blank():
    with pytest.raises(InvalidInputError):
        combine_name(" ", "\u3000")


# ---------------------------------------------------------------------------
# normalize_company and company_key


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Acme   Co., Ltd. ", "Acme Co., Ltd."),
        ("\u3000台灣大哥大\u3000股份有限公司 ", "台灣大哥大 股份有限公司"),
        ("ACME inc", "ACME inc"),
        ("", ""),
    ],
)
def test_normalize_company_collapses_spaces(raw, expected):
    assert normalize_company(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Acme Co., Ltd.", "acme"),
        ("ACME Inc.", "acme"),
        ("Acme, Inc", "acme"),
        ("Acme Corporation", "acme"),
        ("acme llc", "acme"),
        ("Foo GmbH & Co. KG", "foo"),
        ("Ｔｓｍｃ Ltd", "tsmc"),
        ("台灣大哥大股份有限公司", "台灣大哥大"),
        ("台灣大哥大 股份有限公司", "台灣大哥大"),
        ("鴻海精密工業有限公司", "鴻海精密工業"),
        ("宏碁公司", "宏碁"),
        ("台灣（股）公司", "台灣"),
        ("株式会社ソニー", "ソニー"),
        ("Example Taiwan Co., Ltd. 台灣分公司", "exampletaiwancoltd台灣分公司"),
        ("公司", "公司"),
        ("Inc.", "inc"),
        ("", ""),
    ],
)
def test_company_key_drops_legal_forms(raw, expected):
    assert company_key(raw) == expected


def test_company_key_matches_spellings():
    assert company_key("ACME  Co., Ltd.") == company_key("acme co ltd")
