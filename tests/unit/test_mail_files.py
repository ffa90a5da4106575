import email
import email.parser
import email.policy
import mailbox
from email.message import EmailMessage
from pathlib import Path

import pytest

from lib.adapters.mail_files import EmlFileSender, iter_mail_files, takeout_labels
from lib.errors import PermanentDeliveryError
from lib.ports import MailSender, OutboundEmail


def outbound(**changes) -> OutboundEmail:
    fields = dict(
        outbox_id="ob-7f3a2c",
        sender="xiaoming.wang@example.com",
        sender_name="王小明",
        to=("yating.chang@example.com",),
        subject="報價單：網站改版（三個登陸頁）",
        text_body="張小姐您好，\n附上報價單。\n",
        message_id="<outbound-7f3a2c@crm.example.com>",
        html_body="<p>張小姐您好</p>",
    )
    fields.update(changes)
    return OutboundEmail(**fields)


def simple_message(subject: str, message_id: str, **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Lin Mei <mei.lin@example.com>"
    msg["To"] = "sales@example.com"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(f"Body of {subject}\nFrom the start of a line.\n")
    return msg.as_bytes()


# ---------------------------------------------------------------- EmlFileSender


def test_eml_sender_implements_mail_sender(tmp_path):
    assert isinstance(EmlFileSender(tmp_path), MailSender)


def test_eml_sender_twice_writes_one_file(tmp_path):
    sender = EmlFileSender(tmp_path / "outbox")

    first = sender.send(outbound())
    path = tmp_path / "outbox" / "ob-7f3a2c.eml"
    written = path.read_bytes()
    second = sender.send(outbound(subject="changed"))

    assert first == second == "file:ob-7f3a2c"
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == ["ob-7f3a2c.eml"]
    assert path.read_bytes() == written


def test_eml_file_parses_back(tmp_path):
    EmlFileSender(tmp_path).send(outbound())

    with (tmp_path / "ob-7f3a2c.eml").open("rb") as handle:
        parsed = email.parser.BytesParser(policy=email.policy.default).parse(handle)

    assert str(parsed["Subject"]) == "報價單：網站改版（三個登陸頁）"
    assert parsed["From"].addresses[0].display_name == "王小明"
    assert parsed["From"].addresses[0].addr_spec == "xiaoming.wang@example.com"
    assert parsed["Message-ID"] == "<outbound-7f3a2c@crm.example.com>"
    assert parsed.get_body(preferencelist=("plain",)).get_content().startswith("張小姐您好")
    assert parsed.get_body(preferencelist=("html",)).get_content().startswith("<p>張小姐您好</p>")


def test_eml_sender_leaves_no_temp_files(tmp_path):
    EmlFileSender(tmp_path).send(outbound())

    assert [p.name for p in tmp_path.iterdir()] == ["ob-7f3a2c.eml"]


@pytest.mark.parametrize("outbox_id", ["../escape", "a/b", ".hidden", "", "x" * 201])
def test_eml_sender_rejects_unsafe_outbox_id(tmp_path, outbox_id):
    with pytest.raises(PermanentDeliveryError):
        EmlFileSender(tmp_path).send(outbound(outbox_id=outbox_id))

    assert list(tmp_path.iterdir()) == []


def test_eml_sender_rejects_invalid_record(tmp_path):
    with pytest.raises(PermanentDeliveryError, match="to\\[0\\]"):
        EmlFileSender(tmp_path).send(outbound(to=("nobody",)))

    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- iter_mail_files


def write_mbox(path: Path, messages: list[bytes]) -> None:
    box = mailbox.mbox(path)
    try:
        for raw in messages:
            box.add(raw)
        box.flush()
    finally:
        box.close()


def test_iter_mbox_yields_each_message(tmp_path):
    path = tmp_path / "export"  # no extension: detection reads the first line
    write_mbox(path, [simple_message("first", "<m1@example.com>"), simple_message("second", "<m2@example.com>")])

    items = list(iter_mail_files([path]))

    assert [label for label, _raw in items] == [f"{path}#0", f"{path}#1"]
    subjects = [email.message_from_bytes(raw, policy=email.policy.default)["Subject"] for _l, raw in items]
    assert subjects == ["first", "second"]
    body = email.message_from_bytes(items[1][1], policy=email.policy.default).get_content()
    assert "From the start of a line." in body


def test_iter_folder_sorted_and_recursive(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.eml").write_bytes(simple_message("b2", "<b2@example.com>"))
    (tmp_path / "a.eml").write_bytes(simple_message("a", "<a@example.com>"))
    (tmp_path / "c.eml").write_bytes(simple_message("c", "<c@example.com>"))
    (tmp_path / "notes.txt").write_text("not mail", encoding="utf-8")
    (tmp_path / ".ob-1.eml.tmp").write_bytes(b"partial")
    write_mbox(tmp_path / "all.mbox", [simple_message("m0", "<m0@example.com>")])

    labels = [label for label, _raw in iter_mail_files([tmp_path])]

    assert labels == [
        str(tmp_path / "a.eml"),
        f"{tmp_path / 'all.mbox'}#0",
        str(tmp_path / "b" / "2.eml"),
        str(tmp_path / "c.eml"),
    ]


def test_iter_named_file_is_read_whatever_extension(tmp_path):
    path = tmp_path / "message.txt"
    raw = simple_message("plain file", "<p@example.com>")
    path.write_bytes(raw)

    assert list(iter_mail_files([path])) == [(str(path), raw)]


def test_iter_reads_eml_written_by_sender(tmp_path):
    EmlFileSender(tmp_path).send(outbound())

    [(label, raw)] = list(iter_mail_files([tmp_path]))

    assert label == str(tmp_path / "ob-7f3a2c.eml")
    assert email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"] == "<outbound-7f3a2c@crm.example.com>"


def test_iter_missing_path_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        list(iter_mail_files([tmp_path / "missing.eml"]))


# ---------------------------------------------------------------- takeout_labels


def test_takeout_labels_maps_system_labels_and_thread():
    raw = simple_message(
        "t",
        "<t@example.com>",
        X_GM_THRID="1833964318946516528",
        X_Gmail_Labels="Inbox,Important,Opened,Category Promotions,Customers,\"Leads, 2025\"",
    )

    thread_id, labels = takeout_labels(raw)

    assert thread_id == format(1833964318946516528, "x")
    assert labels == frozenset({"INBOX", "IMPORTANT", "CATEGORY_PROMOTIONS", "Customers", "Leads, 2025"})


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Sent", {"SENT"}),
        ("Spam,Unread", {"SPAM", "UNREAD"}),
        ("Drafts", {"DRAFT"}),
        ("Trash,Starred", {"TRASH", "STARRED"}),
        ("Archived,Category Updates", {"CATEGORY_UPDATES"}),
        ("Category Social, Category Forums", {"CATEGORY_SOCIAL", "CATEGORY_FORUMS"}),
    ],
)
def test_takeout_labels_table(header, expected):
    _thread, labels = takeout_labels(simple_message("t", "<t@example.com>", X_Gmail_Labels=header))

    assert labels == frozenset(expected)


def test_takeout_labels_decodes_encoded_user_label():
    raw = simple_message("t", "<t@example.com>", X_Gmail_Labels="Inbox,客戶")

    _thread, labels = takeout_labels(raw)

    assert labels == frozenset({"INBOX", "客戶"})


def test_takeout_labels_missing_headers():
    assert takeout_labels(simple_message("t", "<t@example.com>")) == (None, frozenset())


def test_takeout_labels_ignores_non_numeric_thread():
    thread_id, _labels = takeout_labels(simple_message("t", "<t@example.com>", X_GM_THRID="abc"))

    assert thread_id is None
