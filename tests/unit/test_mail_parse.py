"""Unit tests of lib.mail.parse against real messages and hand-made edge cases."""

import base64
import functools
from datetime import datetime, timezone
from pathlib import Path

import pytest

from lib.mail.parse import Address, decode_header_text, guess_decode, html_to_text, parse_bytes

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
EMAIL_DIR = SHARED / "data" / "email"

if not EMAIL_DIR.is_dir():
    pytest.skip(f"shared data not found at {EMAIL_DIR}", allow_module_level=True)

EML_FILES = sorted(EMAIL_DIR.glob("*.eml"))


@functools.lru_cache(maxsize=None)
def parse_file(name: str):
    return parse_bytes((EMAIL_DIR / name).read_bytes())


def test_corpus_is_present():
    assert len(EML_FILES) == 106


@pytest.mark.parametrize("path", EML_FILES, ids=lambda path: path.name)
def test_every_real_message_parses(path):
    parsed = parse_bytes(path.read_bytes())
    assert isinstance(parsed.subject, str)
    assert isinstance(parsed.body_text, str)
    assert parsed.date is None or parsed.date.tzinfo == timezone.utc


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cjk_sa_gb2312_list_reply.eml", "RE: 装硬碟问题"),
        ("cjk_spamscope_gb2312_from_subject.eml", "代开各地增值税发票"),
        ("cjk_sa_utf8_q_subject_spam.eml", "外贸客户开发，势在必行"),
        ("cjk_sa_gb2312_raw8bit_headers.eml", "全新原装进口，送货上门，货到付款－台湾鑫龙商贸集团公司向您拜年!"),
        ("cjk_flanker_gb2312_raw_header.eml", "提示：您的企业成员暂时无法登录邮件客户端"),
        ("cjk_mail_iso2022jp_subject.eml", "まみむめも"),
        (
            "cjk_sa_utf8_subject_utf16_from.eml",
            "【重要訊息】台電105年3月電費，委託金融機構扣繳成功電子繳費憑證(電號07487616730)",
        ),
        ("bounce_sisimai_exchange2007_06_fr.eml", "Non remis : Votre deuxième paire de chaussures à 5 euros"),
    ],
)
def test_subject_decodes(name, expected):
    assert parse_file(name).subject == expected


def test_big5_raw_subject_decodes():
    subject = parse_file("cjk_sa_big5_raw8bit_list.eml").subject
    assert subject.startswith("[SLAT-talk] 鉅靡6月17日新片又到.如有重複寄發.敬請原諒!")


def test_big5_read_as_latin1_is_repaired():
    subject = parse_file("cjk_mail_big5_empty_cte.eml").subject
    assert "大家說英語" in subject
    assert "繁體中文光碟版" in subject


@pytest.mark.parametrize(
    ("name", "display_name", "address"),
    [
        ("cjk_spamscope_gb2312_from_subject.eml", "张先生", "baoguan@hotmail.com"),
        ("cjk_sa_gb2312_list_reply.eml", "Jason Lee (李展锋)", "jason_lee@quantatw.com"),
        ("cjk_flanker_gb2312_raw_header.eml", "腾讯企业邮箱", "10000@qq.com"),
        ("cjk_sa_gb2312_raw8bit_headers.eml", "台湾鑫龙商贸集团公司", "1234@e34.com"),
        ("autoreply_sisimai_rfc3834_02.eml", "Neko, Nyaan", "nekonyaan@example.org"),
        ("cpython_msg_01.eml", "John X. Doe", "bbb@ddd.com"),
    ],
)
def test_from_address_decodes(name, display_name, address):
    assert parse_file(name).from_address == Address(display_name, address)


def test_utf16_from_without_address_keeps_name():
    sender = parse_file("cjk_sa_utf8_subject_utf16_from.eml").from_address
    assert sender.address == ""
    assert sender.display_name.endswith("test")


def test_gb2312_body_decodes():
    body = parse_file("autoreply_sa_exchange_ooo_gb2312.eml").body_text
    assert body.startswith("Thanks for your email. I am out of office till May 23.")


def test_mislabelled_euc_jp_body_decodes():
    body = parse_file("cjk_sa_iso2022jp_list_thread.eml").body_text
    assert body.startswith(">ああ、心当たりがあります。")


def test_cr_only_file_parses_headers():
    parsed = parse_file("bounce_sisimai_rfc3464_01_cr_only.eml")
    assert parsed.subject == "Returned mail: see transcript for details"
    assert parsed.content_type == "multipart/report"
    assert parsed.report_type == "delivery-status"


def test_cr_only_matches_lf_version():
    cr_only = parse_file("bounce_sisimai_rfc3464_01_cr_only.eml")
    lf = parse_file("bounce_sisimai_sendmail_01.eml")
    assert cr_only.delivery_status[1]["final-recipient"] == lf.delivery_status[1]["final-recipient"]


def test_repeated_cc_headers_merge():
    assert len(parse_file("cpython_msg_20.eml").cc) == 3


def test_group_without_addresses_is_empty():
    assert parse_file("cpython_msg_36.eml").to == ()


def test_large_recipient_list():
    assert len(parse_file("enron_nemec-g_all_documents_1783.eml").to) > 250


def test_invalid_local_part_kept_with_defect():
    parsed = parse_file("enron_germany-c_sent_items_1369.eml")
    assert "a..campos@enron.com" in {address.address for address in parsed.to}
    assert any("InvalidHeaderDefect" in defect for defect in parsed.defects)


def test_headers_lookup_ignores_case():
    parsed = parse_file("cpython_msg_15.eml")
    assert parsed.header("mime-version") == parsed.header("MIME-Version")
    assert parsed.header("MIME-VERSION") is not None


def test_header_all_returns_every_value():
    assert len(parse_file("cpython_msg_20.eml").header_all("cc")) == 3


def test_date_converts_to_utc():
    parsed = parse_file("autoreply_flanker_mdn.eml")
    assert parsed.date == datetime(1995, 9, 20, 0, 19, tzinfo=timezone.utc)


def test_missing_date_is_none():
    assert parse_file("cpython_msg_18.eml").date is None


def test_rfc2231_parameter_filename():
    raw = (
        b"From: a@example.com\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
        b"--b\nContent-Type: text/plain\n\nsee file\n"
        b"--b\nContent-Type: application/pdf\n"
        b"Content-Disposition: attachment; filename*=UTF-8''%E5%A0%B1%E5%83%B9.pdf\n"
        b"Content-Transfer-Encoding: base64\n\nJVBERg==\n--b--\n"
    )
    parsed = parse_bytes(raw)
    assert parsed.attachments[0].filename == "報價.pdf"
    assert parsed.attachments[0].size == 4
    assert parsed.body_text == "see file"


def test_attachment_from_real_message():
    attachment = parse_file("cpython_msg_07.eml").attachments[0]
    assert attachment.filename == "dingusfish.gif"
    assert attachment.content_type == "image/gif"


def test_html_only_body_becomes_text():
    parsed = parse_file("cjk_flanker_gb2312_raw_header.eml")
    assert parsed.has_html
    assert "<" not in parsed.body_text
    assert parsed.body_text.startswith("尊敬的管理员：")


def test_multipart_without_boundary_keeps_body():
    parsed = parse_file("cpython_msg_41.eml")
    assert "Blah blah blah" in parsed.body_text
    assert "NoBoundaryInMultipartDefect" in parsed.defects


def test_forward_body_when_outer_empty():
    assert "Groupwise" in parse_file("cpython_msg_46.eml").body_text


def test_report_parts_extracted():
    parsed = parse_file("bounce_sisimai_postfix_01.eml")
    assert parsed.delivery_status[1]["status"] == "5.1.1"
    assert parsed.delivery_status[1]["action"] == "failed"


def test_returned_headers_from_rfc822_part():
    parsed = parse_file("bounce_sisimai_sendmail_01.eml")
    assert parsed.returned_headers.get("message-id") == "<E1C50F1B-1C83-4820-BC36-AC6FBFBE8568@example.org>"


def test_reply_to_differs_from_from():
    parsed = parse_file("cjk_sa_iso2022jp_list_thread.eml")
    assert parsed.reply_to
    assert parsed.reply_to[0].address != parsed.from_address.address


def test_list_reply_has_references():
    parsed = parse_file("cjk_sa_iso2022jp_list_thread.eml")
    assert parsed.in_reply_to is not None
    assert parsed.references[-1].startswith("<")


def test_encoded_comma_is_one_address():
    parsed = parse_bytes(b"From: =?utf-8?q?Lin=2C_Mei?= <Mei.Lin@Example.com>\nTo: x@example.com\n\nhi\n")
    assert parsed.from_address == Address("Lin, Mei", "mei.lin@example.com")


def test_split_encoded_word_joins_bytes():
    value = "=?UTF-8?B?6Zec5g==?= =?UTF-8?B?lrzloLHlg7nllq4=?="
    assert decode_header_text(value) == "關於報價單"


def test_gb2312_label_decodes_gbk_characters():
    # "堃" (GBK bytes 0x88 0xD2) is outside GB2312; mail clients still label it GB2312.
    value = "=?gb2312?B?" + base64.b64encode("王堃".encode("gbk")).decode() + "?="
    assert decode_header_text(value) == "王堃"


def test_raw_bytes_prefer_declared_charset():
    assert guess_decode("台灣".encode("big5"), hints=("big5",)) == "台灣"


def test_raw_bytes_without_hint_pick_gbk():
    assert guess_decode("您的企业成员暂时无法登录".encode("gbk")) == "您的企业成员暂时无法登录"


def test_raw_bytes_without_hint_pick_big5():
    assert guess_decode("您好，想了解企業方案的價格".encode("big5")) == "您好，想了解企業方案的價格"


def test_html_to_text_drops_script_and_style():
    text = html_to_text("<html><head><style>p{}</style></head><body><p>A&amp;B</p><script>x()</script><p>C</p>")
    assert text == "A&B\n\nC"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage",
        b"Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: multipart/mixed; boundary=x\n\n",
        b"Subject: =?utf-8?B?!!!?=\nFrom: <<>>\nDate: yesterday\n\nbody",
        b"From: \xff\xfe\xfd <a@b.c>\nSubject: \x81\x82\x83\n\n\x81",
    ],
)
def test_malformed_input_never_raises(raw):
    assert isinstance(parse_bytes(raw).defects, tuple)


def test_deep_nesting_is_bounded():
    depth = 60
    head = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (i, i) for i in range(depth))
    parsed = parse_bytes(b"From: a@example.com\n" + head + b"Content-Type: text/plain\n\ndeep\n")
    assert any("nesting deeper" in defect for defect in parsed.defects)
