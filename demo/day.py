"""A demo business day of form deliveries, in every vendor's real shape, signed for the intake endpoints.

People, companies and addresses are invented, and every address is under example.com,
example.org, example.net or a made-up ``.com.tw`` domain.

Timing: every signature carries the build time (``day_start_utc``, default now),
so a runner must post the deliveries within the sources' tolerance (300 s in the
sample configuration) of building them. The submission times inside the payloads
tell the story of the eight working hours before that moment.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import functools
import hashlib
import hmac
import json
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

from lib.intake.signatures import hubspot_v3_signature, sign_crm_hmac

Kind = Literal["lead", "duplicate", "edit", "blank", "rejected", "incomplete"]

ACCEPTED = 200
BAD_REQUEST = 400
UNAUTHORIZED = 401
NOT_FOUND = 404
METHOD_NOT_ALLOWED = 405
PAYLOAD_TOO_LARGE = 413
UNSUPPORTED_MEDIA_TYPE = 415

FORM_PATH = "/intake_form"
WEBHOOK_PATH = "/intake_webhook/{source_id}"
DEFAULT_BASE_URL = "http://127.0.0.1:8080"
JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"

# Signature scheme of each source in config/crm.yaml; a unit test keeps them in step.
SOURCE_SCHEMES = {
    "google_forms": "crm_hmac",
    "webflow": "webflow",
    "cf7": "shared_secret",
    "gravityforms": "shared_secret",
    "elementor": "shared_secret",
    "typeform": "typeform",
    "tally": "tally",
    "jotform": "shared_secret",
    "hubspot": "hubspot_v3",
    "html": "none",
}
# Shared-secret vendors whose webhook settings cannot add a header send ?key= instead.
_QUERY_KEY_SOURCES = frozenset({"gravityforms", "elementor", "jotform"})
_STORY_HOURS = 8
_STORY_STEP = dt.timedelta(minutes=12)
_OVERSIZED_BYTES = 300 * 1024
_MULTIPART_BOUNDARY = "----DemoFormBoundary7MA4YWxkTrZu0gW"


@dataclasses.dataclass(frozen=True)
class Delivery:
    """One HTTP request of the demo day and the status a correct server returns.

    Attributes:
        label: Short unique name, e.g. ``"05-webflow-chen"``.
        method: HTTP method.
        path: Request path, ``/intake_form`` or ``/intake_webhook/<source id>``.
        query: Query parameters.
        headers: Request headers, signature headers included.
        body: The exact request body.
        expect_status: The status a correct server returns.
        kind: What the delivery exercises.
        source_id: The source the path names (an unknown one for the 404 case).
    """

    label: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    expect_status: int
    kind: Kind
    source_id: str


def _json_bytes(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def _multipart(fields: list[tuple[str, str]]) -> tuple[str, bytes]:
    parts = [
        f'--{_MULTIPART_BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields
    ]
    body = ("".join(parts) + f"--{_MULTIPART_BOUNDARY}--\r\n").encode("utf-8")
    return f"multipart/form-data; boundary={_MULTIPART_BOUNDARY}", body


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _millis(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


class _Day:
    """Build and sign the deliveries in order, advancing the story clock per submission."""

    def __init__(self, secrets: Mapping[str, bytes], sign_time: dt.datetime, base_url: str):
        self.secrets = secrets
        self.sign_seconds = int(sign_time.timestamp())
        self.base_url = base_url.rstrip("/")
        self.story_time = sign_time - dt.timedelta(hours=_STORY_HOURS)
        self.deliveries: list[Delivery] = []

    def next_time(self) -> dt.datetime:
        """Return the next submission time of the story."""
        self.story_time += _STORY_STEP
        return self.story_time

    def path_for(self, source_id: str) -> str:
        return FORM_PATH if source_id == "google_forms" else WEBHOOK_PATH.format(source_id=source_id)

    def add(
        self,
        name: str,
        source_id: str,
        content_type: str,
        body: bytes,
        *,
        kind: Kind = "lead",
        status: int = ACCEPTED,
        signer: Callable[[str, str, bytes], tuple[dict[str, str], dict[str, str]]] | None = None,
        method: str = "POST",
    ) -> Delivery:
        """Sign and record one delivery; ``signer`` replaces the source's own scheme."""
        path = self.path_for(source_id)
        headers, query = (signer or self.sign)(source_id, path, body)
        delivery = Delivery(
            label=f"{len(self.deliveries) + 1:02d}-{name}",
            method=method,
            path=path,
            query=query,
            headers={"Content-Type": content_type, **headers},
            body=body,
            expect_status=status,
            kind=kind,
            source_id=source_id,
        )
        self.deliveries.append(delivery)
        return delivery

    def repeat(self, original: Delivery, name: str, kind: Kind) -> None:
        """Record the same request again, byte for byte, as a redelivery."""
        label = f"{len(self.deliveries) + 1:02d}-{name}"
        self.deliveries.append(dataclasses.replace(original, label=label, kind=kind))

    def sign(
        self, source_id: str, path: str, body: bytes, *, seconds: int | None = None, secret: bytes | None = None
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Return the headers and query that the source's scheme needs.

        ``seconds`` and ``secret`` replace the signing time and the source's secret
        for the deliveries that must be rejected.
        """
        scheme = SOURCE_SCHEMES.get(source_id, "none")
        when = self.sign_seconds if seconds is None else seconds
        if scheme == "none":
            return {}, {}
        secret = secret or self.secrets[source_id]
        if scheme == "crm_hmac":
            return sign_crm_hmac(secret, body, when), {}
        if scheme == "webflow":
            digest = hmac.new(secret, f"{when * 1000}:".encode() + body, hashlib.sha256).hexdigest()
            return {"x-webflow-timestamp": str(when * 1000), "x-webflow-signature": digest}, {}
        if scheme == "typeform":
            digest = base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode()
            return {"Typeform-Signature": "sha256=" + digest}, {}
        if scheme == "tally":
            return {"Tally-Signature": base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode()}, {}
        if scheme == "hubspot_v3":
            signature = hubspot_v3_signature(secret, "POST", self.base_url + path, body, when * 1000)
            return {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": str(when * 1000)}, {}
        if source_id in _QUERY_KEY_SOURCES:
            return {}, {"key": secret.decode("utf-8")}
        return {"X-CRM-Secret": secret.decode("utf-8")}, {}


# Vendor payloads, each in the shape the vendor really sends.


def _google_form_body(response_id: str, moment: dt.datetime, respondent_email: str, items: list[tuple[str, str, object]]) -> bytes:
    return _json_bytes(
        {
            "source": "form_onFormSubmit",
            "formId": "1DemoFormContactUs0001",
            "responseId": response_id,
            "timestamp": _iso(moment),
            "respondentEmail": respondent_email,
            "items": [{"title": title, "type": kind, "response": response} for title, kind, response in items],
        }
    )


def _sheet_body(row: int, moment: dt.datetime, answers: dict[str, str]) -> bytes:
    local = moment.astimezone(dt.timezone(dt.timedelta(hours=8)))
    stamp = f"{local.month}/{local.day}/{local.year} {local:%H:%M:%S}"
    named = {"Timestamp": [stamp], **{title: [value] for title, value in answers.items()}}
    return _json_bytes(
        {
            "source": "sheet_onFormSubmit",
            "triggerUid": "7301123344556677889",
            "sheetName": "表單回應 1",
            "rangeA1": f"A{row}:F{row}",
            "timeZone": "Asia/Taipei",
            "namedValues": named,
        }
    )


def _webflow_body(event_id: str, moment: dt.datetime, data: dict[str, object]) -> bytes:
    return _json_bytes(
        {
            "triggerType": "form_submission",
            "payload": {
                "name": "Contact Us",
                "siteId": "65427cf400e02b306eaa0abc",
                "data": data,
                "submittedAt": _iso(moment),
                "id": event_id,
                "formId": "65428ea1c0ffee0000000abc",
            },
        }
    )


def _gravity_body(entry_id: str, moment: dt.datetime, answers: dict[str, str]) -> bytes:
    entry = {
        "id": entry_id,
        "form_id": "3",
        "date_created": moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "is_starred": "0",
        "is_read": "0",
        "ip": "198.51.100.41",
        "source_url": "https://www.example-build.com.tw/contact/?utm_source=google&utm_medium=cpc&utm_campaign=brand",
        "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4)",
        "currency": "TWD",
        "status": "active",
        **answers,
    }
    return _json_bytes(entry)


def _typeform_body(event_id: str, moment: dt.datetime, answers: list[dict[str, object]], hidden: dict[str, str]) -> bytes:
    fields = [
        {"id": "fNm01", "ref": "first_name", "type": "short_text", "title": "What is your first name? 您的名字"},
        {"id": "fEm02", "ref": "work_email", "type": "email", "title": "Work email? 公司信箱"},
        {"id": "fIn03", "ref": "interests", "type": "multiple_choice", "title": "What do you need?"},
        {"id": "fPh04", "ref": "phone", "type": "phone_number", "title": "Phone?"},
        {"id": "fSz05", "ref": "company_size", "type": "dropdown", "title": "Company size"},
        {"id": "fCo06", "ref": "consent", "type": "yes_no", "title": "May we contact you?"},
    ]
    response = {
        "form_id": "DemoTf01",
        "token": event_id.lower(),
        "landed_at": _iso(moment - dt.timedelta(minutes=3)),
        "submitted_at": _iso(moment),
        "hidden": hidden,
        "definition": {"id": "DemoTf01", "title": "Discovery call 需求訪談", "fields": fields},
        "answers": answers,
    }
    return _json_bytes({"event_id": event_id, "event_type": "form_response", "form_response": response})


def _typeform_answer(ref: str, field_id: str, kind: str, value: object) -> dict[str, object]:
    return {"type": kind, kind: value, "field": {"id": field_id, "ref": ref}}


def _tally_body(event_id: str, response_id: str, moment: dt.datetime, fields: list[dict[str, object]]) -> bytes:
    data = {
        "responseId": response_id,
        "submissionId": response_id,
        "respondentId": "resp-" + response_id,
        "formId": "mDemoTa",
        "formName": "預約展示 Book a demo",
        "createdAt": _iso(moment),
        "fields": fields,
    }
    return _json_bytes({"eventId": event_id, "eventType": "FORM_RESPONSE", "createdAt": _iso(moment), "data": data})


_TALLY_SERVICE_OPTIONS = [{"id": "svc-web", "text": "網站改版"}, {"id": "svc-seo", "text": "SEO"}, {"id": "svc-ads", "text": "廣告投放"}]


def _jotform_fields(submission_id: str, moment: dt.datetime, answers: dict[str, object], pretty: str) -> list[tuple[str, str]]:
    raw_request = {"slug": "submit/250000000000001", "submitDate": str(_millis(moment)), **answers, "event_id": f"{_millis(moment)}_250000000000001_demo"}
    return [
        ("action", ""),
        ("webhookURL", ""),
        ("username", "demo-agency"),
        ("formID", "250000000000001"),
        ("type", "WEB"),
        ("formTitle", "Contact Sales 聯絡業務"),
        ("submissionID", submission_id),
        ("pretty", pretty),
        ("rawRequest", json.dumps(raw_request, ensure_ascii=False)),
    ]


def _hubspot_contact(vid: int, conversion_id: str, moment: dt.datetime, properties: dict[str, str]) -> dict[str, object]:
    submission = {"conversion-id": conversion_id, "timestamp": _millis(moment), "form-id": "b7e1c0de-demo", "page-url": "https://www.example.net/pricing?utm_source=linkedin&utm_medium=paid"}
    return {"vid": vid, "properties": {name: {"value": value} for name, value in properties.items()}, "form-submissions": [submission]}


def _unsigned(source_id: str, path: str, body: bytes) -> tuple[dict[str, str], dict[str, str]]:
    return {}, {}


# The day itself, in order.


def _morning(day: _Day) -> None:
    wang = _google_form_body(
        "2_ABdemo-wang-0001",
        day.next_time(),
        "daming.wang@example-tea.com.tw",
        [
            ("姓名 Full name", "TEXT", "王大明"),
            ("公司 Company", "TEXT", "範例茶業股份有限公司"),
            ("電話 Phone", "TEXT", "0912-111-222"),
            ("Services of interest", "CHECKBOX", ["Website redesign", "SEO, analytics"]),
            ("預算 Budget", "MULTIPLE_CHOICE", "NT$50萬–100萬"),
            ("方便聯絡的時間", "TIME", "14:30"),
        ],
    )
    day.add("google-forms-wang", "google_forms", JSON_TYPE, wang)

    chen = _webflow_body(
        "6900a1f8demo000000000001",
        day.next_time(),
        {"First Name": "Yi-An", "Last Name": "陳", "Email": "yian.chen@example.com", "Phone Number": 886922333444, "Message": "想了解官網改版的報價", "utm_source": "linkedin"},
    )
    original = day.add("webflow-chen", "webflow", JSON_TYPE, chen)
    day.repeat(original, "webflow-chen-redelivery", "duplicate")
    day.repeat(original, "webflow-chen-redelivery-again", "duplicate")

    cf7 = urllib.parse.urlencode(
        [("_wpcf7", "88"), ("_wpcf7_version", "5.9.5"), ("_wpcf7_locale", "zh_TW"), ("_wpcf7_unit_tag", "wpcf7-f88-p12-o1"),
         ("your-name", "林佩君"), ("your-email", "peichun.lin@example.org"), ("your-subject", "合作洽詢"),
         ("services[]", "Website redesign"), ("services[]", "Ads"), ("your-message", "下個月要辦展覽，想先做一頁式網站。"),
         ("acceptance-privacy", "1"), ("utm_campaign", "")]
    ).encode()  # fmt: skip
    day.add("cf7-lin", "cf7", FORM_TYPE, cf7)

    gravity = _gravity_body("5120", day.next_time(), {"1.3": "承恩", "1.6": "高", "2": "chengen.kao@example-build.com.tw", "3": "(04) 2255-0188", "4.1": "Website redesign", "4.2": "", "4.3": "SEO", "5": "建案網站需要中英文版本", "6": ""})
    day.add("gravityforms-kao", "gravityforms", JSON_TYPE, gravity)


def _late_morning(day: _Day) -> None:
    elementor = urllib.parse.urlencode(
        [("form[id]", "5d1e2f3"), ("form[name]", "首頁聯絡表單"),
         ("fields[name][id]", "name"), ("fields[name][type]", "text"), ("fields[name][title]", "姓名"), ("fields[name][value]", "吳冠廷"),
         ("fields[email][id]", "email"), ("fields[email][type]", "email"), ("fields[email][title]", "電子郵件"), ("fields[email][value]", "kuanting.wu@example.org"),
         ("fields[field_a1][id]", "field_a1"), ("fields[field_a1][type]", "checkbox"), ("fields[field_a1][title]", "感興趣的服務"), ("fields[field_a1][value]", "SEO, Ads"),
         ("fields[message][id]", "message"), ("fields[message][type]", "textarea"), ("fields[message][title]", "留言"), ("fields[message][value]", "請 email 聯絡即可"),
         ("meta[page_url][title]", "Page URL"), ("meta[page_url][value]", "https://www.example.org/?utm_source=line&utm_medium=social"),
         ("meta[remote_ip][title]", "Remote IP"), ("meta[remote_ip][value]", "203.0.113.77")]
    ).encode()  # fmt: skip
    day.next_time()
    day.add("elementor-wu", "elementor", FORM_TYPE, elementor)

    moment = day.next_time()
    answers = [
        _typeform_answer("first_name", "fNm01", "text", "Sarah"),
        _typeform_answer("work_email", "fEm02", "email", "sarah.wu@example.net"),
        {"type": "choices", "choices": {"labels": ["SEO", "Ads"]}, "field": {"id": "fIn03", "ref": "interests"}},
        {"type": "choice", "choice": {"label": "51-200"}, "field": {"id": "fSz05", "ref": "company_size"}},
        _typeform_answer("consent", "fCo06", "boolean", True),
    ]
    day.add("typeform-wu", "typeform", JSON_TYPE, _typeform_body("01JDEMOTYPEFORM0001", moment, answers, {"utm_source": "newsletter", "crm_contact_id": ""}))

    fields = [
        {"key": "question_nm", "label": "姓名", "type": "INPUT_TEXT", "value": "周佳穎"},
        {"key": "question_em", "label": "電子郵件", "type": "INPUT_EMAIL", "value": "chiaying.chou@example-tea.com.tw"},
        {"key": "question_co", "label": "公司", "type": "INPUT_TEXT", "value": "範例茶業股份有限公司"},
        {"key": "question_sv", "label": "感興趣的服務", "type": "CHECKBOXES", "value": ["svc-seo", "svc-ads"], "options": _TALLY_SERVICE_OPTIONS},
        {"key": "question_sv_svc-seo", "label": "感興趣的服務 (SEO)", "type": "CHECKBOX", "value": True},
    ]
    tally = day.add("tally-chou", "tally", JSON_TYPE, _tally_body("b1a0c2d3-demo-0001", "rDemo01", day.next_time(), fields))
    day.repeat(tally, "tally-chou-retry", "duplicate")

    moment = day.next_time()
    answers = {"q3_name": {"first": "Daniel", "last": "Hsu"}, "q4_email": "daniel.hsu@example.net", "q5_phoneNumber": {"area": "02", "phone": "2555 0199"}, "q6_company": "Example Robotics Ltd.", "q7_services": ["Website redesign", "Ads"]}
    content_type, body = _multipart(_jotform_fields("6000000000000000001", moment, answers, "Name:Daniel Hsu, E-mail:daniel.hsu@example.net"))
    day.add("jotform-hsu", "jotform", content_type, body)


def _midday(day: _Day) -> None:
    batch = [
        _hubspot_contact(3501, "c0de-demo-0001", day.next_time(), {"email": "olivia.tsai@example.com", "firstname": "Olivia", "lastname": "Tsai", "company": "Example Logistics", "jobtitle": "Head of Marketing", "numemployees": "201-500"}),
        _hubspot_contact(3502, "c0de-demo-0002", day.next_time(), {"email": "ken.lo@example.net", "firstname": "Ken", "lastname": "Lo", "phone": "+886 2 5550 0188", "jobtitle": "CTO"}),
    ]
    day.add("hubspot-batch-tsai-lo", "hubspot", JSON_TYPE, _json_bytes(batch))

    click = urllib.parse.urlencode([("name", "黃志明"), ("email", "chihming.huang@example.com"), ("company", "範例貿易"), ("message", "想了解價格"), ("page", "https://www.example.com/zh-tw/lp?gclid=DemoClick01")]).encode()
    day.next_time()
    first = day.add("html-huang-double-click", "html", FORM_TYPE, click)
    day.repeat(first, "html-huang-double-click-second", "duplicate")

    edited = _google_form_body(
        "2_ABdemo-wang-0001",
        day.next_time(),
        "daming.wang@example-tea.com.tw",
        [("姓名 Full name", "TEXT", "王大明"), ("公司 Company", "TEXT", "範例茶業股份有限公司"), ("電話 Phone", "TEXT", "0988-765-432"),
         ("Services of interest", "CHECKBOX", ["Website redesign", "SEO, analytics"]), ("預算 Budget", "MULTIPLE_CHOICE", "NT$50萬–100萬")],
    )  # fmt: skip
    day.add("google-forms-wang-edited-phone", "google_forms", JSON_TYPE, edited, kind="edit")

    blank = _sheet_body(41, day.next_time(), {"Email Address": "", "姓名 Full name": "", "公司": "", "Services of interest": "", "電話": ""})
    day.add("google-forms-blank-trigger", "google_forms", JSON_TYPE, blank, kind="blank")

    moment = day.next_time()
    answers = [_typeform_answer("first_name", "fNm01", "text", "怡安"), _typeform_answer("work_email", "fEm02", "email", "YiAn.Chen@Example.com"), _typeform_answer("phone", "fPh04", "phone_number", "+886922333444")]
    day.add("typeform-chen-same-person-as-webflow", "typeform", JSON_TYPE, _typeform_body("01JDEMOTYPEFORM0002", moment, answers, {"utm_source": "webinar"}))


def _afternoon(day: _Day) -> None:
    day.next_time()
    day.add("html-phone-only", "html", JSON_TYPE, _json_bytes({"form": "landing-zh-tw", "submission_id": None, "name": "張先生", "phone": "0933-444-555", "message": "請回電，謝謝"}))
    day.next_time()
    day.add("html-no-contact", "html", JSON_TYPE, _json_bytes({"form": "landing-zh-tw", "name": "Anonymous visitor", "message": "Just browsing"}), kind="incomplete")

    cf7 = urllib.parse.urlencode([("_wpcf7", "88"), ("_wpcf7_version", "5.9.5"), ("your-name", "Megan Clarke"), ("your-email", "megan.clarke@example.com"), ("your-subject", "Partnership"), ("services[]", "SEO"), ("your-message", "We run a café chain in Taichung.")]).encode()
    day.next_time()
    day.add("cf7-clarke", "cf7", FORM_TYPE, cf7)

    gravity = _gravity_body("5121", day.next_time(), {"1.3": "Hannah", "1.6": "Liao", "2": "hannah.liao@example.org", "3": "0955-010-203", "4.1": "", "4.2": "", "4.3": "Ads", "5": ""})
    day.add("gravityforms-liao", "gravityforms", JSON_TYPE, gravity)

    simple = urllib.parse.urlencode([("Name", "Grace Lee"), ("Email", "grace.lee@example.com"), ("Company", "Example Studio"), ("Message", "Need a landing page"), ("Date", "March 2, 2026"), ("Page URL", "https://www.example.com/contact"), ("Powered by", "Elementor")]).encode()
    day.next_time()
    day.add("elementor-simple-lee", "elementor", FORM_TYPE, simple)

    fields = [
        {"key": "question_nm", "label": "Full name", "type": "INPUT_TEXT", "value": "Ethan Yang"},
        {"key": "question_em", "label": "Email", "type": "INPUT_EMAIL", "value": "ethan.yang@example.net"},
        {"key": "question_sv", "label": "Services", "type": "CHECKBOXES", "value": ["svc-web"], "options": _TALLY_SERVICE_OPTIONS},
    ]
    day.add("tally-yang", "tally", JSON_TYPE, _tally_body("b1a0c2d3-demo-0002", "rDemo02", day.next_time(), fields))

    moment = day.next_time()
    answers = {"q3_name": {"first": "淑芬", "last": "蔡"}, "q4_email": "shufen.tsai@example-foods.com.tw", "q5_phoneNumber": {"full": "(07) 555-0123"}, "q6_company": "範例食品", "q8_utm_source": "facebook"}
    body = urllib.parse.urlencode(_jotform_fields("6000000000000000002", moment, answers, "姓名:蔡 淑芬, 電子郵件:shufen.tsai@example-foods.com.tw")).encode()
    day.add("jotform-tsai", "jotform", FORM_TYPE, body)


def _evening(day: _Day) -> None:
    flat = [{"eventId": 990001, "email": "mark.chiu@example.com", "firstname": "Mark", "lastname": "Chiu", "company": "Example Capital", "jobtitle": "Director", "submittedAt": _millis(day.next_time())}]
    day.add("hubspot-chiu", "hubspot", JSON_TYPE, _json_bytes(flat))

    data = {"姓名": "劉雅雯", "電子郵件": "yawen.liu@example-design.com.tw", "公司名稱": "範例設計", "聯絡電話": "0922-888-777", "需求說明": "品牌識別與官網"}
    day.add("webflow-liu", "webflow", JSON_TYPE, _webflow_body("6900a1f8demo000000000002", day.next_time(), data))

    content_type, body = _multipart([("姓名", "許文彥"), ("電子郵件", "wenyen.hsu@example.org"), ("公司", "範例建設"), ("留言", "請來電"), ("page", "https://www.example.org/?utm_campaign=spring&fbclid=DemoFb01")])
    day.next_time()
    day.add("html-multipart-hsu", "html", content_type, body)

    typed = _google_form_body("2_ABdemo-kuo-0002", day.next_time(), "", [("姓名 Full name", "TEXT", "郭書瑜"), ("電子郵件 Email", "TEXT", "shuyu.kuo@example.com"), ("公司 Company", "TEXT", "範例旅行社"), ("Services of interest", "CHECKBOX", ["Ads"])])
    day.add("google-forms-kuo", "google_forms", JSON_TYPE, typed)

    custom = {"form": "partner-portal", "submission_id": "pp-20260302-0007", "first_name": "Jason", "last_name": "Kuo", "email": "jason.kuo@example.net", "company_size": "11-50", "region": "central"}
    day.next_time()
    day.add("html-custom-sender-kuo", "html", JSON_TYPE, _json_bytes(custom))

    moment = day.next_time()
    answers = [_typeform_answer("first_name", "fNm01", "text", "志偉"), _typeform_answer("work_email", "fEm02", "email", "chihwei.chiu@example-tea.com.tw"), {"type": "choices", "choices": {"labels": ["Website"]}, "field": {"id": "fIn03", "ref": "interests"}}]
    day.add("typeform-chiu", "typeform", JSON_TYPE, _typeform_body("01JDEMOTYPEFORM0003", moment, answers, {"utm_source": "line", "utm_campaign": "tea-expo"}))

    verified = _google_form_body("2_ABdemo-fang-0004", day.next_time(), "minghui.fang@example.org", [("姓名 Full name", "TEXT", "方明慧"), ("電子郵件 Email", "TEXT", "mh.fang@example.net"), ("Services of interest", "CHECKBOX", ["Ads", "Website redesign"])])
    day.add("google-forms-fang-collected-email", "google_forms", JSON_TYPE, verified)

    sheet = _sheet_body(42, day.next_time(), {"Email Address": " Ivy.Ho@Example.net ", "姓名 Full name": "何依婷", "公司": "Example Books", "Services of interest": "Website redesign, SEO, analytics", "電話": "0910-222-333"})
    day.add("google-forms-sheet-ho", "google_forms", JSON_TYPE, sheet)


def _rejections(day: _Day) -> None:
    body = _webflow_body("6900a1f8demo000000000099", day.next_time(), {"Email": "mallory@example.com"})
    wrong = functools.partial(day.sign, secret=b"not-the-webflow-secret")
    day.add("webflow-wrong-signature", "webflow", JSON_TYPE, body, kind="rejected", status=UNAUTHORIZED, signer=wrong)

    late = _google_form_body("2_ABdemo-late-0003", day.next_time(), "", [("姓名 Full name", "TEXT", "過期測試")])
    expired = functools.partial(day.sign, seconds=day.sign_seconds - 3600)
    day.add("google-forms-expired-timestamp", "google_forms", JSON_TYPE, late, kind="rejected", status=UNAUTHORIZED, signer=expired)

    answers = [_typeform_answer("work_email", "fEm02", "email", "unsigned@example.com")]
    day.add("typeform-missing-signature", "typeform", JSON_TYPE, _typeform_body("01JDEMOUNSIGNED", day.next_time(), answers, {}), kind="rejected", status=UNAUTHORIZED, signer=_unsigned)

    day.add("tally-malformed-json", "tally", JSON_TYPE, b'{"eventId": "b1a0-demo-bad", "eventType": "FORM_RESPONSE", "data": {"fields": [', kind="rejected", status=BAD_REQUEST)
    day.add("html-xml-body", "html", "text/xml", "<lead><email>xml@example.com</email></lead>".encode(), kind="rejected", status=UNSUPPORTED_MEDIA_TYPE)
    oversized = urllib.parse.urlencode([("email", "big@example.com"), ("message", "x" * _OVERSIZED_BYTES)]).encode()
    day.add("html-body-over-limit", "html", FORM_TYPE, oversized, kind="rejected", status=PAYLOAD_TOO_LARGE)
    day.add("webflow-get", "webflow", JSON_TYPE, b"", kind="rejected", status=METHOD_NOT_ALLOWED, method="GET")
    day.add("unknown-source", "wufoo", FORM_TYPE, b"Field1=Test&Field2=wufoo%40example.com", kind="rejected", status=NOT_FOUND)


def build_day(
    secrets: Mapping[str, bytes],
    day_start_utc: dt.datetime | None = None,
    *,
    base_url: str = DEFAULT_BASE_URL,
) -> list[Delivery]:
    """Build the demo day's deliveries, in the order they are to be posted.

    Args:
        secrets: Secret per source id, as the server reads them from ``CRM_SECRET_<ID>``;
            every signed source in ``SOURCE_SCHEMES`` needs one.
        day_start_utc: The signing time, aware; None means now. Post the
            deliveries within the sources' tolerance of it.
        base_url: Scheme, host and port the runner posts to. HubSpot's signature
            covers the full URL, so it must match the URL the server reconstructs.

    Raises:
        KeyError: a signed source has no secret; the message lists the missing ids.
    """
    missing = sorted(source_id for source_id, scheme in SOURCE_SCHEMES.items() if scheme != "none" and source_id not in secrets)
    if missing:
        raise KeyError(f"missing demo secrets for sources {missing}")
    sign_time = day_start_utc or dt.datetime.now(dt.timezone.utc)
    day = _Day(secrets, sign_time, base_url)
    _morning(day)
    _late_morning(day)
    _midday(day)
    _afternoon(day)
    _evening(day)
    _rejections(day)
    return day.deliveries


def write_day(folder: str | Path, deliveries: list[Delivery]) -> list[Path]:
    """Write one JSON file per delivery (body as text, or base64 when it is not UTF-8) and return the paths."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for delivery in deliveries:
        record = dataclasses.asdict(delivery)
        body = record.pop("body")
        try:
            record["body_text"] = body.decode("utf-8")
        except UnicodeDecodeError:
            record["body_base64"] = base64.b64encode(body).decode("ascii")
        path = target / f"{delivery.label}.json"
        path.write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
        paths.append(path)
    return paths


def demo_secrets() -> dict[str, bytes]:
    """Return a fresh random secret for each signed source, for a local run."""
    return {source_id: uuid.uuid4().hex.encode() for source_id, scheme in SOURCE_SCHEMES.items() if scheme != "none"}
