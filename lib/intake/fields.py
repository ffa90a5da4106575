"""Map vendor field names and labels onto canonical fields, and clean their values.

Every intake parser feeds answers through a ``SubmissionBuilder``: it looks the key
up in the source's ``field_map``, then in the configured synonyms, and stores the
stripped value under the canonical name or, when nothing matches, in ``extra``
under the label. Values are only stripped here; emails and phones are normalised
later by the pipeline.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence

from lib.config.schema import Source
from lib.errors import InvalidInputError
from lib.intake.types import CANONICAL_FIELDS, FieldValue, Submission

# Query parameters of a page URL that are copied into ``extra`` (ad click ids).
CLICK_ID_PARAMETERS = ("gclid", "fbclid", "msclkid", "gbraid", "wbraid")
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")

# Names that mean the page the form was on, or the page before it. They match only
# as whole labels, because words like "url" are too common inside other labels.
_PAGE_LABELS = {
    "page_url": ("page", "page url", "page uri", "pageurl", "pageuri", "source url", "landing page", "url"),
    "referrer": ("referrer", "referer", "http referer", "referrer url"),
}
_CJK = r"\u3400-\u9fff\uf900-\ufaff"
_SEPARATORS = re.compile(r"[\s_\-]+")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_PUNCTUATION = re.compile(rf"[^a-z0-9@.'{_CJK} ]+")
_CJK_ONLY = re.compile(rf"^[{_CJK}]+$")
_JSON_URL_LIST = re.compile(r"^\s*\[.*\]\s*$", re.DOTALL)


def normalize_label(label: str) -> str:
    """Lower-case a label, split camelCase, and collapse spaces, '_' and '-' to one space."""
    spaced = _CAMEL_BOUNDARY.sub(" ", label.strip())
    return _SEPARATORS.sub(" ", spaced).strip().lower()


def _strip_punctuation(label: str) -> str:
    return " ".join(_PUNCTUATION.sub(" ", label).split())


class FieldMapper:
    """Resolve a vendor key or label to a canonical field name.

    Args:
        field_map: The source's own map from vendor key to canonical name; it wins.
        synonyms: Labels per canonical field, in any language, from the configuration.
    """

    def __init__(self, field_map: Mapping[str, str], synonyms: Mapping[str, Sequence[str]]):
        self._field_map = dict(field_map)
        self._field_map_normalized = {normalize_label(key): value for key, value in field_map.items()}
        self._exact: dict[str, str] = {}
        self._contained: list[tuple[str, str]] = []
        self._add_exact_names()
        for canonical, labels in synonyms.items():
            for label in labels:
                self._add_synonym(normalize_label(label), canonical)

    def _add_exact_names(self) -> None:
        for canonical in CANONICAL_FIELDS:
            self._exact.setdefault(normalize_label(canonical), canonical)
        for canonical, labels in _PAGE_LABELS.items():
            for label in labels:
                self._exact.setdefault(label, canonical)

    def _add_synonym(self, label: str, canonical: str) -> None:
        self._exact.setdefault(label, canonical)
        self._exact.setdefault(_strip_punctuation(label), canonical)
        bare = _strip_punctuation(label)
        # A single Chinese character such as 名 or 姓 is part of too many labels
        # (公司名稱), so it only ever matches a whole label.
        if bare and not (_CJK_ONLY.match(bare) and len(bare) < 2):
            self._contained.append((bare, canonical))

    def canonical_for(self, key: str, label: str | None = None) -> str | None:
        """Return the canonical field for a vendor key (and its label), or None.

        The source's ``field_map`` is tried on the key first. Then the label and the
        key are matched against the synonyms, whole label first. Failing that, the
        synonym found inside the label that ends last wins, because the head noun
        comes last in both English and Chinese ("company phone" is a phone). Among
        synonyms ending at the same place, the longest wins.
        """
        if key in self._field_map:
            return self._field_map[key]
        normalized_key = normalize_label(key)
        if normalized_key in self._field_map_normalized:
            return self._field_map_normalized[normalized_key]
        for text in (label, key):
            if text:
                found = self._match_label(normalize_label(text))
                if found:
                    return found
        return None

    def _match_label(self, label: str) -> str | None:
        if label in self._exact:
            return self._exact[label]
        bare = _strip_punctuation(label)
        if bare in self._exact:
            return self._exact[bare]
        best: tuple[int, int, str] | None = None
        for synonym, canonical in self._contained:
            end = _find_synonym_end(bare, synonym)
            if end is not None and (best is None or (end, len(synonym)) > best[:2]):
                best = (end, len(synonym), canonical)
        return best[2] if best else None


def _find_synonym_end(label: str, synonym: str) -> int | None:
    """Return where the last whole-word occurrence of ``synonym`` ends in ``label``."""
    if _CJK_ONLY.match(synonym.replace(" ", "")):
        pattern = re.escape(synonym)
    else:
        pattern = rf"(?<![a-z0-9]){re.escape(synonym)}(?![a-z0-9])"
    ends = [match.end() for match in re.finditer(pattern, label)]
    return ends[-1] if ends else None


def clean_value(value: object) -> FieldValue | None:
    """Strip a raw answer into a string or a list of strings; None when empty.

    A JSON number becomes its decimal text (a phone number sent as a number), a
    boolean becomes "yes" or "no", and a list drops its empty items.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, (list, tuple)):
        items = [clean_value(item) for item in value]
        flat = [item for item in items if isinstance(item, str)]
        return flat or None
    if isinstance(value, Mapping):
        parts = [clean_value(item) for item in value.values()]
        joined = ", ".join(part for part in parts if isinstance(part, str))
        return joined or None
    return str(value).strip() or None


def group_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, FieldValue]:
    """Group decoded form pairs by key, keeping their order.

    A key sent more than once, or ending in ``[]`` (PHP style), becomes a list
    under the key without the brackets.
    """
    grouped: dict[str, FieldValue] = {}
    for key, value in pairs:
        is_list = key.endswith("[]")
        name = key[:-2] if is_list else key
        if name not in grouped:
            grouped[name] = [value] if is_list else value
            continue
        current = grouped[name]
        grouped[name] = [*current, value] if isinstance(current, list) else [current, value]
    return grouped


def split_checkbox_answer(answer: str, options: Sequence[str]) -> list[str]:
    """Split a ', '-joined checkbox answer against the known options.

    An option that itself contains ', ' stays whole. Text that matches no option
    (the "Other" answer) is kept as one item, commas included.
    """
    parts = answer.split(", ")
    known = set(options)
    items: list[str] = []
    unknown: list[str] = []
    index = 0
    while index < len(parts):
        length = _longest_option_at(parts, index, known)
        if length:
            if unknown:
                items.append(", ".join(unknown))
                unknown = []
            items.append(", ".join(parts[index : index + length]))
            index += length
        else:
            unknown.append(parts[index])
            index += 1
    if unknown:
        items.append(", ".join(unknown))
    return [item.strip() for item in items if item.strip()]


def _longest_option_at(parts: list[str], start: int, known: set[str]) -> int:
    for end in range(len(parts), start, -1):
        if ", ".join(parts[start:end]) in known:
            return end - start
    return 0


def parse_json_url_list(value: str) -> list[str] | None:
    """Return the URLs of a JSON array written into a string (a file-upload answer), else None."""
    if not _JSON_URL_LIST.match(value):
        return None
    try:
        decoded = json.loads(value)
    except ValueError:
        return None
    if isinstance(decoded, list) and decoded and all(isinstance(item, str) and "://" in item for item in decoded):
        return [item.strip() for item in decoded]
    return None


class SubmissionBuilder:
    """Collect one submission's answers, mapped and cleaned, then build the ``Submission``.

    Args:
        source: The configured source; its ``field_map`` and ``checkbox_options`` apply.
        synonyms: The configured labels per canonical field.
        vendor_field_map: The vendor's well-known keys (HubSpot's ``jobtitle``);
            the source's own ``field_map`` overrides them.
    """

    def __init__(
        self,
        source: Source,
        synonyms: Mapping[str, Sequence[str]],
        *,
        vendor_field_map: Mapping[str, str] | None = None,
    ):
        self.source = source
        self.mapper = FieldMapper({**(vendor_field_map or {}), **source.field_map}, synonyms)
        self.fields: dict[str, FieldValue] = {}
        self.extra: dict[str, FieldValue] = {}
        self._checkbox_options = {normalize_label(title): options for title, options in source.checkbox_options.items()}

    def add(self, key: str, value: object, label: str | None = None) -> None:
        """Store one answer under its canonical field, or in ``extra`` under its label.

        The first answer for a canonical field wins; a later one goes to ``extra``
        so nothing the person typed is lost.
        """
        cleaned = self._split_known_options(label or key, clean_value(value))
        if cleaned is None:
            return
        canonical = self.mapper.canonical_for(key, label)
        if canonical is not None and canonical not in self.fields:
            self.fields[canonical] = cleaned
        else:
            self.add_extra(label or key, cleaned)

    def add_canonical(self, canonical: str, value: object) -> None:
        """Store a value under a known canonical field unless one is already there."""
        cleaned = clean_value(value)
        if cleaned is not None and canonical not in self.fields:
            self.fields[canonical] = cleaned

    def add_extra(self, label: str, value: object) -> None:
        """Store an unmapped answer; a repeated label gets a numbered suffix."""
        cleaned = clean_value(value)
        if cleaned is None:
            return
        name = label.strip() or "(untitled)"
        suffix = 2
        while name in self.extra:
            name = f"{label.strip()} ({suffix})"
            suffix += 1
        self.extra[name] = cleaned

    def has_checkbox_options(self, title: str) -> bool:
        """Return True when the source lists the options of the question ``title``."""
        return normalize_label(title) in self._checkbox_options

    def _split_known_options(self, title: str, value: FieldValue | None) -> FieldValue | None:
        options = self._checkbox_options.get(normalize_label(title))
        if options and isinstance(value, str):
            return split_checkbox_answer(value, options)
        return value

    def build(
        self,
        *,
        event_id: object,
        submitted_at: dt.datetime | None,
        form_id: object = None,
        respondent_email_verified: bool = False,
    ) -> Submission:
        """Return the finished submission, after filling UTM fields from the page URL."""
        self._add_page_parameters()
        return Submission(
            source_id=self.source.id,
            event_id=_optional_text(event_id),
            submitted_at=submitted_at,
            fields=dict(self.fields),
            extra=dict(self.extra),
            form_id=_optional_text(form_id),
            respondent_email_verified=respondent_email_verified,
        )

    def _add_page_parameters(self) -> None:
        page_url = self.fields.get("page_url")
        if not isinstance(page_url, str):
            return
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(page_url).query)
        for name in UTM_FIELDS:
            if query.get(name):
                self.add_canonical(name, query[name][0])
        for name in CLICK_ID_PARAMETERS:
            if query.get(name) and name not in self.extra:
                self.add_extra(name, query[name][0])


def _optional_text(value: object) -> str | None:
    cleaned = clean_value(value)
    return cleaned if isinstance(cleaned, str) else None


def parse_timestamp(value: object, *, field: str) -> dt.datetime | None:
    """Parse an ISO 8601 string or epoch milliseconds into an aware UTC datetime.

    A string without an offset is taken as UTC. Returns None for a missing value.

    Raises:
        InvalidInputError: the value is present but is not a timestamp.
    """
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value / 1000, tz=dt.timezone.utc)
    if isinstance(value, str) and value.strip().isdigit():
        return dt.datetime.fromtimestamp(int(value.strip()) / 1000, tz=dt.timezone.utc)
    try:
        parsed = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInputError(field, "an ISO 8601 timestamp or epoch milliseconds", value) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)
