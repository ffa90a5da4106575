"""Normalisation of contact fields: email addresses, phone numbers, names and companies.

Every function here is pure and offline, so intake parsers and dedupe rules can call
them on each record. Inputs are what people type into forms, often with a CJK input
method, so full-width characters and full-width spaces are expected.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
import urllib.parse
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import getaddresses

import phonenumbers

from lib.domain.freemail import FREEMAIL_BRANDS, FREEMAIL_DOMAINS
from lib.errors import InvalidInputError

# Characters that str.strip() keeps but that show up around pasted addresses:
# zero-width space, zero-width joiners and the byte-order mark.
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"

# The dot-atom local part of RFC 5322, ASCII only. Quoted local parts are valid mail
# syntax but never typed into a lead form, so they are rejected as implausible.
_LOCAL_PART_RE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_TOP_LEVEL_DOMAIN_RE = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}")
_MAX_LOCAL_PART_LENGTH = 64
_MAX_DOMAIN_LENGTH = 253

# Gmail ignores dots and "+tag" in the local part, and googlemail.com is an alias.
_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
_GMAIL_CANONICAL_DOMAIN = "gmail.com"

# Second-level suffixes under which companies register names (``acme.com.tw``).
# NOTE: A small built-in subset of the Public Suffix List, so domains under other
# multi-part suffixes (for example ``city.kawasaki.jp``) keep one label too few.
SECOND_LEVEL_SUFFIXES: frozenset[str] = frozenset(
    {
        "com.tw", "org.tw", "net.tw", "edu.tw", "gov.tw", "idv.tw", "mil.tw", "game.tw", "ebiz.tw", "club.tw",
        "co.jp", "ne.jp", "or.jp", "ac.jp", "go.jp", "ad.jp", "ed.jp", "gr.jp", "lg.jp",
        "co.uk", "org.uk", "ac.uk", "gov.uk", "ltd.uk", "plc.uk", "me.uk", "net.uk",
        "com.cn", "net.cn", "org.cn", "gov.cn", "edu.cn", "ac.cn",
        "com.hk", "org.hk", "net.hk", "edu.hk", "gov.hk", "idv.hk",
        "com.mo", "com.sg", "edu.sg", "gov.sg", "org.sg", "net.sg",
        "com.my", "com.au", "net.au", "org.au", "edu.au", "gov.au",
        "co.nz", "org.nz", "net.nz", "co.kr", "or.kr", "ne.kr", "go.kr", "ac.kr",
        "co.th", "in.th", "ac.th", "go.th", "com.vn", "com.ph", "co.id", "co.in", "net.in", "org.in",
        "com.br", "com.mx", "co.za", "com.tr",
    }
)  # fmt: skip

# Han ideographs: CJK Unified Ideographs, Extension A, compatibility ideographs and
# the supplementary-plane extensions B to H.
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_HAN_RE = re.compile(f"[{_HAN}]")
_SCRIPT_RUN_RE = re.compile(f"[{_HAN}]+|[^\\s{_HAN}]+")

# Two-character surnames, in traditional and simplified forms. The Taiwanese ones
# (張簡, 范姜, 張廖) come from families that joined two surnames.
COMPOUND_SURNAMES: frozenset[str] = frozenset(
    {
        "歐陽", "欧阳", "司馬", "司马", "諸葛", "诸葛", "上官", "司徒", "東方", "东方",
        "夏侯", "皇甫", "尉遲", "尉迟", "公孫", "公孙", "慕容", "長孫", "长孙", "宇文",
        "令狐", "澹臺", "澹台", "西門", "西门", "鍾離", "钟离", "端木", "軒轅", "轩辕",
        "呼延", "聞人", "闻人", "南宮", "南宫", "獨孤", "独孤", "申屠", "太史", "司空",
        "張簡", "范姜", "張廖",
    }
)  # fmt: skip

# Separators of transliterated foreign names written in Han characters, given name first.
_HAN_NAME_SEPARATORS = "·‧・•"

# Lowercase particles that belong to a Western family name ("van Beethoven").
_FAMILY_PARTICLES = frozenset({"van", "von", "de", "der", "den", "da", "di", "del", "della", "du", "le", "la", "st.", "bin", "al"})
_NAME_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv", "phd", "md"})

# Legal-form words dropped from company_key, compared after NFKC and casefold.
_LATIN_COMPANY_SUFFIX_RE = re.compile(
    r"(?:^|[\s,.])(?:inc|incorporated|corp|corporation|co|company|ltd|limited|llc|l\.l\.c|plc|gmbh|kg|ag|s\.a|sa|bv|nv|pte|pty|kk)\.?$"
)
# "分公司" (branch office) is kept because a branch is a different entity to match.
_HAN_COMPANY_SUFFIX_RE = re.compile(r"(?:股份有限公司|有限公司|\(股\)公司|\(股\)|股份公司|株式会社|(?<!分)公司)$")
_HAN_COMPANY_PREFIX_RE = re.compile(r"^(?:株式会社|\(股\))")
_TRAILING_PUNCTUATION_RE = re.compile(r"[\W_]+$")
_NON_WORD_RE = re.compile(r"[\W_]+")


@dataclasses.dataclass(frozen=True)
class NormalizedEmail:
    """An email address in the forms the CRM stores and compares.

    Attributes:
        original: The input with surrounding spaces removed, as typed.
        address: The whole address lowercased, plus tag and dots kept, IDN domain in Unicode.
        canonical: The dedupe key: lowercased, ASCII (punycode) domain, and for Gmail
            the local part without dots and ``+tag`` on domain gmail.com.
        domain: The lowercased ASCII (punycode) domain.
    """

    original: str
    address: str
    canonical: str
    domain: str


@dataclasses.dataclass(frozen=True)
class PersonName:
    """A person's name split into parts.

    Attributes:
        full: Display form, ordered by the rule in ``combine_name``.
        given: Given name, or "" when unknown.
        family: Family name, or "" when unknown.
        script: "han" when every letter is a Han ideograph, "latin" when none is,
            "mixed" otherwise.
    """

    full: str
    given: str
    family: str
    script: str


# ---------------------------------------------------------------------------
# Email addresses


def normalize_email(raw: str) -> NormalizedEmail | None:
    """Parse a typed email address into its stored and dedupe forms.

    Accepts surrounding spaces (full-width and no-break included), full-width
    characters from a CJK input method, angle brackets, a ``mailto:`` prefix and a
    ``Name <address>`` form.

    Args:
        raw: The address as received.

    Returns:
        The normalised address, or None when the input is not one plausible
        addr-spec: not exactly one address, not exactly one "@", an empty or
        quoted local part, a domain without a dot, or any space inside.
    """
    if not isinstance(raw, str):
        return None
    original = raw.strip().strip(_INVISIBLE).strip()
    addr_spec = _extract_addr_spec(unicodedata.normalize("NFKC", original))
    if addr_spec is None or addr_spec.count("@") != 1:
        return None

    local_part, unicode_domain = addr_spec.split("@")
    unicode_domain = unicode_domain.lower().removesuffix(".")
    ascii_domain = _to_ascii_domain(unicode_domain)
    if ascii_domain is None or not _is_plausible_local_part(local_part):
        return None
    if not _parses_as_addr_spec(f"{local_part}@{ascii_domain}"):
        return None

    local_part = local_part.lower()
    canonical = _canonical_address(local_part, ascii_domain)
    if canonical is None:
        return None
    return NormalizedEmail(
        original=original,
        address=f"{local_part}@{unicode_domain}",
        canonical=canonical,
        domain=ascii_domain,
    )


def _extract_addr_spec(text: str) -> str | None:
    """Return the single addr-spec inside text, after unwrapping ``<>`` and ``mailto:``."""
    for _ in range(2):
        text = text.strip()
        if text.startswith("<") and text.endswith(">"):
            text = text[1:-1].strip()
        if text.lower().startswith("mailto:"):
            text = urllib.parse.unquote(text[len("mailto:") :].split("?", 1)[0]).strip()

    if not text:
        return None
    # A space is only legal around a display name, as in "Mei Lin <mei.lin@example.com>".
    if "<" not in text and any(ch.isspace() for ch in text):
        return None
    addresses = getaddresses([text])
    if len(addresses) != 1:
        return None
    addr_spec = addresses[0][1]
    if not addr_spec or any(ch.isspace() for ch in addr_spec):
        return None
    return addr_spec


def _is_plausible_local_part(local_part: str) -> bool:
    return len(local_part) <= _MAX_LOCAL_PART_LENGTH and _LOCAL_PART_RE.fullmatch(local_part) is not None


def _to_ascii_domain(unicode_domain: str) -> str | None:
    """Return the punycode form of a lowercased domain, or None when it is not a plausible host name."""
    try:
        # NOTE: Python's "idna" codec implements IDNA 2003, which maps a few
        # characters (such as "ß") differently from IDNA 2008.
        ascii_domain = unicode_domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None

    labels = ascii_domain.split(".")
    if len(labels) < 2 or len(ascii_domain) > _MAX_DOMAIN_LENGTH:
        return None
    if not all(_DOMAIN_LABEL_RE.fullmatch(label) for label in labels):
        return None
    if not _TOP_LEVEL_DOMAIN_RE.fullmatch(labels[-1]):
        return None
    return ascii_domain


def _parses_as_addr_spec(addr_spec: str) -> bool:
    """Check that the standard library's RFC 5322 parser accepts addr_spec without defects."""
    try:
        Address(addr_spec=addr_spec)
    except (HeaderParseError, ValueError, IndexError):
        return False
    return True


def _canonical_address(local_part: str, ascii_domain: str) -> str | None:
    if ascii_domain not in _GMAIL_DOMAINS:
        return f"{local_part}@{ascii_domain}"
    gmail_local_part = local_part.split("+", 1)[0].replace(".", "")
    if not gmail_local_part:
        return None
    return f"{gmail_local_part}@{_GMAIL_CANONICAL_DOMAIN}"


def company_domain(email: NormalizedEmail) -> str | None:
    """Return the registrable domain that identifies the sender's company.

    Subdomains are stripped (``mail.sales.acme.com.tw`` gives ``acme.com.tw``),
    using the second-level suffixes in ``SECOND_LEVEL_SUFFIXES``.

    Args:
        email: A result of ``normalize_email``.

    Returns:
        The registrable ASCII domain, or None for a free-mail provider from
        ``lib.domain.freemail`` (or a subdomain of one) and for a bare public suffix.
    """
    labels = email.domain.split(".")
    suffix_length = 2 if len(labels) >= 2 and ".".join(labels[-2:]) in SECOND_LEVEL_SUFFIXES else 1
    if len(labels) <= suffix_length:
        return None

    registrable = ".".join(labels[-(suffix_length + 1) :])
    if registrable.split(".")[0] in FREEMAIL_BRANDS:
        return None
    parents = (".".join(labels[index:]) for index in range(len(labels) - 1))
    if any(parent in FREEMAIL_DOMAINS for parent in parents):
        return None
    return registrable


# ---------------------------------------------------------------------------
# Phone numbers


def normalize_phone(raw: str | int, default_region: str = "TW") -> str | None:
    """Format a phone number as E.164.

    Accepts separators, brackets, full-width digits and extensions (which are
    dropped). An integer, or a string of digits without a leading "+" or "0", may be
    a JSON number that lost its "+": when it is not a valid number in
    default_region, it is parsed again as an international number.

    Args:
        raw: The number as received.
        default_region: ISO 3166-1 alpha-2 region for numbers written without a
            country code.

    Returns:
        The E.164 string such as "+886912345678", or None when no reading is a
        valid number in the phonenumbers metadata. A number of a plausible length
        that matches no number range, such as the 11-digit "09123456789", is invalid.
    """
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        text = str(raw) if raw > 0 else ""
    elif isinstance(raw, str):
        text = unicodedata.normalize("NFKC", raw).strip()
    else:
        return None
    if not text:
        return None

    readings = [_parse_phone(text, default_region)]
    if text.isdigit() and not text.startswith("0"):
        readings.append(_parse_phone("+" + text, default_region))
    parsed = [number for number in readings if number is not None]

    for number in parsed:
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


def _parse_phone(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None


# ---------------------------------------------------------------------------
# Person names


def split_name(raw: str) -> PersonName:
    """Split a typed full name into given and family names.

    Han names are read family first: spaces are removed, the first character is
    the family name, or the first two for a name of three or more characters that
    starts with one of ``COMPOUND_SURNAMES``. A single Han character is taken as a
    family name. A transliterated name with a middle dot (麥可·喬丹) is given first.

    Latin names are read "First [Middle] Last", or "Last, First" with one comma.
    A leading all-capitals word before mixed-case words ("HUANG Chih-Hao") is the
    family name. Particles such as "van" and suffixes such as "Jr." join the family
    name. A single word is a given name.

    Mixed names: a Han surname next to Latin words ("張 Ya-Ting", "Ya-Ting 張") is
    the family name and the Latin words are the given name. A longer Han run is a
    full Chinese name and supplies both parts, and the display form is kept as typed.

    Args:
        raw: The name as received.

    Returns:
        The split name. ``full`` follows the display rule of ``combine_name``.

    Raises:
        InvalidInputError: raw is empty or only whitespace.
    """
    text = _collapse_spaces(unicodedata.normalize("NFKC", raw or ""))
    if not text:
        raise InvalidInputError("name", "a non-empty name", raw)

    script = _script_of(text)
    if script == "han":
        return _split_han_name(text)
    if script == "latin":
        return _split_latin_name(text)
    return _split_mixed_name(text)


def combine_name(first: str, last: str) -> PersonName:
    """Build a person's name from separate given-name and family-name fields.

    Display rule: the order follows the script of the given name.

    * Han given and Han family: family then given with no space (黃 + 志豪 → 黃志豪).
    * Han given and Latin family: family, a space, given (Chang 雅婷).
    * Latin given, whatever the family: given, a space, family ("Ya-Ting Chang",
      and "Ya-Ting 張", the English-name-plus-surname form common in Taiwan offices).

    When only one field is filled, it is split as a full name by ``split_name``,
    because forms with two fields often get the whole name in one of them. A
    single Latin word in the family field stays the family name.

    Args:
        first: Given name field.
        last: Family name field.

    Returns:
        The combined name.

    Raises:
        InvalidInputError: both fields are empty or only whitespace.
    """
    given = _clean_name_part(first)
    family = _clean_name_part(last)
    if not given and not family:
        raise InvalidInputError("name", "a given or family name", f"{first!r} {last!r}")
    if not family:
        return split_name(given)
    if not given:
        name = split_name(family)
        if name.family:
            return name
        return dataclasses.replace(name, given="", family=name.given)

    given_is_han = _script_of(given) == "han"
    if given_is_han and _script_of(family) == "han":
        full = family + given
    elif given_is_han:
        full = f"{family} {given}"
    else:
        full = f"{given} {family}"
    return PersonName(full=full, given=given, family=family, script=_script_of(given + family))


def _clean_name_part(part: str | None) -> str:
    text = _collapse_spaces(unicodedata.normalize("NFKC", part or ""))
    return re.sub(r"\s+", "", text) if _script_of(text) == "han" else text


def _collapse_spaces(text: str) -> str:
    text = text.translate({ord(ch): None for ch in _INVISIBLE})
    return re.sub(r"\s+", " ", text).strip()


def _script_of(text: str) -> str:
    letters = [ch for ch in text if ch.isalpha()]
    han_count = sum(1 for ch in letters if _HAN_RE.match(ch))
    if letters and han_count == len(letters):
        return "han"
    # NOTE: Kana and Hangul count as "latin" here, so Japanese and Korean names are
    # split like Western names.
    return "mixed" if han_count else "latin"


def _split_han_name(text: str) -> PersonName:
    compact = re.sub(r"\s+", "", text)
    for separator in _HAN_NAME_SEPARATORS:
        if separator in compact:
            parts = [part for part in compact.split(separator) if part]
            if len(parts) >= 2:
                return PersonName(full=compact, given=parts[0], family=parts[-1], script="han")
    family, given = _split_han_compact(compact)
    return PersonName(full=compact, given=given, family=family, script="han")


def _split_han_compact(name: str) -> tuple[str, str]:
    """Return (family, given) of a Han name written family first without spaces."""
    if len(name) >= 3 and name[:2] in COMPOUND_SURNAMES:
        return name[:2], name[2:]
    if len(name) == 1:
        return name, ""
    return name[0], name[1:]


def _is_han_surname_only(han: str) -> bool:
    return len(han) == 1 or han in COMPOUND_SURNAMES


def _split_latin_name(text: str) -> PersonName:
    if text.count(",") == 1:
        head, tail = (part.strip() for part in text.split(","))
        if tail.lower().strip(".") in _NAME_SUFFIXES:
            text = f"{head} {tail}"
        elif head and tail:
            return PersonName(full=f"{tail} {head}", given=tail, family=head, script="latin")
        else:
            text = head or tail

    words = text.split()
    if len(words) == 1:
        return PersonName(full=words[0], given=words[0], family="", script="latin")
    if _is_capitalised_family_first(words):
        given = " ".join(words[1:])
        return PersonName(full=f"{given} {words[0]}", given=given, family=words[0], script="latin")

    family_start = len(words) - 1
    while family_start > 1 and words[family_start].lower().strip(".") in _NAME_SUFFIXES:
        family_start -= 1
    while family_start > 1 and words[family_start - 1].lower() in _FAMILY_PARTICLES:
        family_start -= 1
    given = " ".join(words[:family_start])
    family = " ".join(words[family_start:])
    return PersonName(full=f"{given} {family}", given=given, family=family, script="latin")


def _is_capitalised_family_first(words: list[str]) -> bool:
    first_letters = [ch for ch in words[0] if ch.isalpha()]
    return len(first_letters) > 1 and words[0].isupper() and not all(word.isupper() for word in words[1:])


def _split_mixed_name(text: str) -> PersonName:
    runs = _SCRIPT_RUN_RE.findall(text)
    han = "".join(run for run in runs if _HAN_RE.match(run))
    latin = " ".join(run for run in runs if not _HAN_RE.match(run))

    if _is_han_surname_only(han):
        return PersonName(full=f"{latin} {han}", given=latin, family=han, script="mixed")
    family, given = _split_han_compact(han)
    return PersonName(full=text, given=given, family=family, script="mixed")


# ---------------------------------------------------------------------------
# Companies


def normalize_company(raw: str) -> str:
    """Trim a company name and collapse runs of whitespace to one space, keeping its casing.

    Args:
        raw: The company name as received.

    Returns:
        The cleaned display name, "" for blank input.
    """
    return _collapse_spaces(raw or "")


def company_key(raw: str) -> str:
    """Build the key that matches spellings of one company name.

    The key is NFKC-normalised (full-width letters become ASCII) and casefolded.
    Legal-form words at the end (Inc., Co., Ltd., 股份有限公司, 有限公司, 公司 and
    similar) are dropped, then every space and punctuation mark. A legal-form word
    is kept when nothing else would remain, and "分公司" (branch) is kept.

    Args:
        raw: The company name as received.

    Returns:
        The matching key, "" for blank input.
    """
    text = _collapse_spaces(unicodedata.normalize("NFKC", raw or "")).casefold()
    text = _strip_company_affixes(text)
    return _NON_WORD_RE.sub("", text)


def _strip_company_affixes(text: str) -> str:
    previous = None
    while text != previous:
        previous = text
        for pattern in (_HAN_COMPANY_SUFFIX_RE, _LATIN_COMPANY_SUFFIX_RE, _TRAILING_PUNCTUATION_RE, _HAN_COMPANY_PREFIX_RE):
            shorter = pattern.sub("", text).strip()
            if _NON_WORD_RE.sub("", shorter):
                text = shorter
    return text
