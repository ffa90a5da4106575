from lib.config.loader import load_config
from lib.config.schema import EmailTemplate
from lib.domain.templates import MISSING_VALUE, render_email, render_text

TEMPLATES = load_config().templates
VALUES = {"name": "王大明", "first_name": "大明", "company": "台灣好物", "rep_name": "王小美",
          "source_name": "Webflow 官網", "organization": "範例數位行銷股份有限公司"}


def template(subject: str, body: str) -> EmailTemplate:
    return EmailTemplate.model_validate({"subject": {"zh-TW": subject, "en": subject},
                                         "body": {"zh-TW": body, "en": body}})


def test_chinese_acknowledgement_filled():
    subject, body = render_email(TEMPLATES.acknowledgement, VALUES, "zh-TW")

    assert subject == "感謝您的來信，大明！我們已收到您的需求"
    assert body.startswith("王大明 您好：")
    assert "感謝您透過Webflow 官網與我們聯繫" in body
    assert "業務王小美" in body


def test_english_acknowledgement_filled():
    values = VALUES | {"name": "Amy Chen", "first_name": "Amy", "rep_name": "Emily Carter"}

    subject, body = render_email(TEMPLATES.acknowledgement, values, "en")

    assert subject == "Thanks, Amy — we received your request"
    assert body.startswith("Hello Amy,")
    assert "I'm Emily Carter" in body


def test_missing_value_in_chinese():
    assert render_text("公司：{company}", {}, "zh-TW") == "公司：" + MISSING_VALUE["zh-TW"]


def test_missing_value_in_english():
    assert render_text("Company: {company}", {}, "en") == "Company: not given"


def test_empty_and_none_values_count_as_missing():
    rendered = render_text("{company}/{title}", {"company": "", "title": None}, "en")

    assert rendered == "not given/not given"


def test_unknown_locale_uses_english_missing_value():
    assert render_text("{company}", {}, "ja") == "not given"


def test_attribute_placeholder_rendered_literally():
    assert render_text("{name.__class__}", {"name": "Amy"}, "en") == "{name.__class__}"


def test_index_placeholder_rendered_literally():
    assert render_text("{name[0]}", {"name": "Amy"}, "en") == "{name[0]}"


def test_positional_placeholder_rendered_literally():
    assert render_text("{0} and {}", {"name": "Amy"}, "en") == "{0} and {}"


def test_escaped_braces_kept():
    assert render_text("{{name}} is {name}", {"name": "Amy"}, "en") == "{name} is Amy"


def test_subject_newlines_removed():
    subject, body = render_email(template("Hello\n{name}\n", "Line 1\n{name}\n"), {"name": "Amy"}, "en")

    assert subject == "Hello Amy"
    assert body == "Line 1\nAmy\n"


def test_number_value_rendered():
    assert render_text("Score: {score}", {"score": 42}, "en") == "Score: 42"
