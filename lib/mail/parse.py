"""Parse raw RFC 5322 messages into a decoded, immutable ``ParsedMessage``.

The parser is the standard library ``email`` package. This module adds the
decoding rules that real CRM mail needs and that ``email`` does not apply:

- RFC 2047 encoded words of the same charset are joined before decoding, so a
  character split across two words survives.
- Charset labels map to supersets (GB2312 to GBK and GB18030, Big5 to CP950
  and Big5-HKSCS), because senders label GBK text as GB2312 and CP950 text as
  Big5.
- Raw 8-bit header bytes are decoded as UTF-8 first, then by the charsets the
  message declares elsewhere, then by a GBK-versus-Big5 byte heuristic.

``parse_bytes`` never raises on malformed input. Each problem becomes a string
in ``ParsedMessage.defects``.
"""

from __future__ import annotations

import binascii
import codecs
import dataclasses
import email.utils
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timezone
from email import policy
from email.message import Message
from email.parser import BytesParser, HeaderParser
from html.parser import HTMLParser
from typing import NamedTuple

logger = logging.getLogger(__name__)

MAX_PART_DEPTH = 20
"""Deepest MIME nesting that is walked; deeper parts are skipped with a defect."""

DEFECT_DEPTH = "part nesting deeper than {limit} levels; inner parts skipped"
DEFECT_PARSE_FAILED = "parser failed with {error}; headers and body are empty"
DEFECT_CHARSET = "{where}: bytes invalid in {charset}; decoded with replacement characters"
DEFECT_BUILD_FAILED = "decoding failed with {error}; fields are empty"
DEFECT_DATE = "Date: cannot parse {value!r}"

# Charset labels mapped to the codecs tried in order. A superset comes first
# because mail labelled GB2312 or Big5 often uses GBK or CP950 characters.
_CHARSET_CANDIDATES: dict[str, tuple[str, ...]] = {
    "gb2312": ("gbk", "gb18030"),
    "gb_2312-80": ("gbk", "gb18030"),
    "csgb2312": ("gbk", "gb18030"),
    "euc-cn": ("gbk", "gb18030"),
    "x-euc-cn": ("gbk", "gb18030"),
    "gbk": ("gbk", "gb18030"),
    "x-gbk": ("gbk", "gb18030"),
    "cp936": ("gbk", "gb18030"),
    "ms936": ("gbk", "gb18030"),
    "gb18030": ("gb18030",),
    "big5": ("cp950", "big5hkscs"),
    "x-big5": ("cp950", "big5hkscs"),
    "csbig5": ("cp950", "big5hkscs"),
    "cn-big5": ("cp950", "big5hkscs"),
    "big5-hkscs": ("big5hkscs", "cp950"),
    "cp950": ("cp950", "big5hkscs"),
    "ks_c_5601-1987": ("cp949",),
    "euc-kr": ("cp949",),
    "shift_jis": ("cp932", "shift_jis"),
    "x-sjis": ("cp932", "shift_jis"),
    # Japanese mail labelled ISO-2022-JP sometimes carries EUC-JP or Shift_JIS bytes.
    "iso-2022-jp": ("iso2022_jp", "iso2022_jp_2", "iso2022_jp_ext", "euc_jp", "cp932"),
    "windows-874": ("cp874",),
    "us-ascii": ("ascii", "utf-8", "cp1252"),
    "ascii": ("ascii", "utf-8", "cp1252"),
    "ansi_x3.4-1968": ("ascii", "utf-8", "cp1252"),
    "iso-8859-1": ("cp1252", "latin-1"),
    "latin1": ("cp1252", "latin-1"),
    "unicode-1-1-utf-7": ("utf-7",),
    "utf8": ("utf-8",),
}

# Charset labels that carry no information about raw 8-bit bytes, so the CJK heuristic runs instead.
_UNINFORMATIVE_HINTS = frozenset({"us-ascii", "ascii", "ansi_x3.4-1968", "utf-8", "utf8"})

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_WHITESPACE = re.compile(r"\s+")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_PLACEHOLDER = "QQEWORD{}QQ"
_PLACEHOLDER_RE = re.compile(r"QQEWORD(\d+)QQ")


class Address(NamedTuple):
    """One mailbox from an address header.

    Attributes:
        display_name: Decoded display name, or the old-style comment name; may be empty.
        address: Lowercased addr-spec; empty when the header has no usable address.
    """

    display_name: str
    address: str


class Attachment(NamedTuple):
    """A part with a filename or an ``attachment`` disposition."""

    filename: str
    content_type: str
    size: int


class HeaderMap:
    """Decoded header fields in message order, looked up case-insensitively."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()):
        self._items = tuple(items)

    def get(self, name: str) -> str | None:
        """Return the first value of the field ``name``, or None when absent."""
        wanted = name.lower()
        for key, value in self._items:
            if key.lower() == wanted:
                return value
        return None

    def get_all(self, name: str) -> list[str]:
        """Return every value of the field ``name`` in message order."""
        wanted = name.lower()
        return [value for key, value in self._items if key.lower() == wanted]

    def items(self) -> tuple[tuple[str, str], ...]:
        """Return all (name, value) pairs with names as written."""
        return self._items

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"HeaderMap({len(self._items)} fields)"


@dataclasses.dataclass(frozen=True)
class ParsedMessage:
    """A decoded message: addresses, dates, body text and report parts.

    Report fields are dicts with lowercased field names. ``delivery_status``
    lists the field groups of every message/delivery-status part, the
    per-message group first. ``returned_headers`` contains the headers of the
    message/rfc822 or text/rfc822-headers part of a multipart/report.
    """

    message_id: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    subject: str = ""
    thread_topic: str | None = None
    from_address: Address | None = None
    sender: Address | None = None
    reply_to: tuple[Address, ...] = ()
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    date: datetime | None = None
    body_text: str = ""
    has_html: bool = False
    attachments: tuple[Attachment, ...] = ()
    headers: HeaderMap = dataclasses.field(default_factory=HeaderMap)
    content_type: str = "text/plain"
    report_type: str | None = None
    delivery_status: tuple[dict[str, str], ...] = ()
    feedback_report: dict[str, str] | None = None
    disposition_notification: dict[str, str] | None = None
    returned_headers: HeaderMap | None = None
    defects: tuple[str, ...] = ()

    def header(self, name: str) -> str | None:
        """Return the first decoded value of header ``name`` (any case), or None."""
        return self.headers.get(name)

    def header_all(self, name: str) -> list[str]:
        """Return every decoded value of header ``name`` (any case)."""
        return self.headers.get_all(name)


# ---------------------------------------------------------------------------
# Byte and charset decoding
# ---------------------------------------------------------------------------


def _normalise_charset(label: str | None) -> str:
    if not label:
        return ""
    label = label.strip().strip("\"'").lower()
    return label.split("*", 1)[0]


def _codec_candidates(label: str) -> tuple[str, ...]:
    label = _normalise_charset(label)
    if label in _CHARSET_CANDIDATES:
        return _CHARSET_CANDIDATES[label]
    try:
        return (codecs.lookup(label).name,)
    except LookupError:
        return ()


def decode_bytes(
    data: bytes, charset: str | None, hints: Sequence[str] = (), where: str = "body",
    defects: list[str] | None = None,
) -> str:
    """Decode ``data`` labelled ``charset``, never raising.

    Args:
        data: The encoded bytes.
        charset: The declared charset label, or None when undeclared.
        hints: Other charset labels the message declares, tried when the label
            is unknown or wrong.
        where: Field name used in defect texts.
        defects: List that receives a defect text when replacement characters
            were needed.

    Returns:
        The decoded text.
    """
    for codec in _codec_candidates(charset or ""):
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
    return guess_decode(data, hints, where, defects)


def guess_decode(
    data: bytes, hints: Sequence[str] = (), where: str = "header", defects: list[str] | None = None,
) -> str:
    """Decode bytes of unknown charset: UTF-8, then ``hints``, then GBK or Big5.

    Args:
        data: The bytes, typically a raw 8-bit header value.
        hints: Charset labels declared elsewhere in the message.
        where: Field name used in defect texts.
        defects: List that receives a defect text when nothing decoded cleanly.

    Returns:
        The decoded text; undecodable bytes become U+FFFD.
    """
    for codec in ("utf-8", *_hint_codecs(hints), *_cjk_order(data)):
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
    if defects is not None:
        defects.append(DEFECT_CHARSET.format(where=where, charset="utf-8"))
    return _decode_mixed(data, hints)


def _decode_mixed(data: bytes, hints: Sequence[str]) -> str:
    """Decode valid UTF-8 sequences as UTF-8 and each other byte run by the first hint.

    Damaged headers mix UTF-8 with legacy bytes, for example U+FFFD characters
    next to raw GB18030 bytes.
    """
    text = data.decode("utf-8", errors="surrogateescape")
    codecs_to_try = [*_hint_codecs(hints), "cp1252"]

    def decode_run(match: re.Match) -> str:
        run = match.group(0).encode("utf-8", "surrogateescape")
        return run.decode(codecs_to_try[0], errors="replace")

    return re.sub("[\udc80-\udcff]+", decode_run, text)


def _repair_latin1_mojibake(text: str, hints: Sequence[str]) -> str:
    """Undo CJK bytes that were read as Latin-1 and re-encoded as UTF-8.

    The repair applies only when every character fits in Latin-1, at least two
    are non-ASCII, and a CJK charset declared in the message decodes the bytes
    strictly into text containing CJK ideographs.
    """
    if sum(char >= "\x80" for char in text) < 2 or any(char > "\xff" for char in text):
        return text
    data = text.encode("latin-1")
    for codec in _hint_codecs(hints):
        try:
            repaired = data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
        if re.search("[\u4e00-\u9fff]", repaired):
            return repaired
    return text


def _hint_codecs(hints: Sequence[str]) -> Iterator[str]:
    for hint in hints:
        if _normalise_charset(hint) not in _UNINFORMATIVE_HINTS:
            yield from _codec_candidates(hint)


def _cjk_order(data: bytes) -> tuple[str, ...]:
    """Order GBK and Big5 by how common the characters each decoding yields are.

    GB2312 hanzi have lead bytes 0xB0-0xF7 and trail bytes 0xA1-0xFE. Common
    Big5 hanzi have lead bytes 0xA4-0xC6 and trail bytes 0x40-0x7E or 0xA1-0xFE.
    Text in one charset read as the other lands in rarely used ranges, so the
    decoding with more common-range pairs wins. A tie goes to Big5.
    """
    gbk_score = big5_score = 0
    index = 0
    while index < len(data) - 1:
        lead, trail = data[index], data[index + 1]
        if lead < 0x80:
            index += 1
            continue
        gbk_score += 0xB0 <= lead <= 0xF7 and trail >= 0xA1
        big5_score += 0xA4 <= lead <= 0xC6 and (0x40 <= trail <= 0x7E or trail >= 0xA1)
        index += 2
    if gbk_score > big5_score:
        return ("gbk", "gb18030", "cp950", "big5hkscs", "cp1252")
    return ("cp950", "big5hkscs", "gbk", "gb18030", "cp1252")


# ---------------------------------------------------------------------------
# Header text
# ---------------------------------------------------------------------------


def _raw_to_text(raw: str, hints: Sequence[str], where: str, defects: list[str]) -> str:
    """Turn a raw header value with surrogate-escaped 8-bit bytes into text."""
    if "\x1b" in raw and raw.isascii():
        # Raw ISO-2022-JP escape sequences are 7-bit, so only the escape marks them.
        try:
            return raw.encode("ascii").decode("iso2022_jp")
        except UnicodeDecodeError:
            return raw
    if not any("\udc80" <= char <= "\udcff" for char in raw):
        return raw
    try:
        data = raw.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        data = raw.encode("utf-8", "surrogateescape")
    return _repair_latin1_mojibake(guess_decode(data, hints, where, defects), hints)


def _decode_word_bytes(encoding: str, text: str) -> bytes | None:
    try:
        if encoding in "bB":
            padded = text + "=" * (-len(text) % 4)
            return binascii.a2b_base64(padded)
        return binascii.a2b_qp(text.encode("ascii"), header=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None


def decode_header_text(
    raw: str, hints: Sequence[str] = (), where: str = "header", defects: list[str] | None = None,
) -> str:
    """Decode a raw header value: 8-bit bytes, RFC 2047 words and folding.

    Args:
        raw: The value as the parser stored it (surrogate-escaped bytes allowed).
        hints: Charset labels declared elsewhere in the message.
        where: Field name used in defect texts.
        defects: List that receives defect texts.

    Returns:
        Unfolded text with surrounding whitespace removed.
    """
    sink = defects if defects is not None else []
    text = _FOLD.sub("", _raw_to_text(raw, hints, where, sink))
    pieces = []
    for _start, _end, charset, payload in _runs_without_gaps(text):
        if charset is None:
            pieces.append(payload)
        else:
            pieces.append(decode_bytes(bytes(payload), charset, hints, where, sink))
    return "".join(pieces).strip()


def _runs_without_gaps(value: str) -> list[tuple[int, int, str | None, bytes | str]]:
    """Split ``value`` into text runs and joined encoded-word runs.

    Whitespace between two encoded words is dropped, as RFC 2047 section 6.2
    requires; other text is kept verbatim.
    """
    runs: list[list] = []
    position = 0
    for match in _ENCODED_WORD.finditer(value):
        charset, encoding, text = match.groups()
        data = _decode_word_bytes(encoding, text)
        if data is None:
            continue
        between = value[position:match.start()]
        previous = runs[-1] if runs else None
        follows_word = previous is not None and previous[2] is not None and not between.strip()
        if follows_word and _normalise_charset(charset) == _normalise_charset(previous[2]):
            previous[1] = match.end()
            previous[3] += data
        else:
            if between and not follows_word:
                runs.append([position, match.start(), None, between])
            runs.append([match.start(), match.end(), charset, bytearray(data)])
        position = match.end()
    if position < len(value):
        runs.append([position, len(value), None, value[position:]])
    return [tuple(run) for run in runs]


# ---------------------------------------------------------------------------
# Addresses
# ---------------------------------------------------------------------------


def _protect_encoded_words(
    text: str, hints: Sequence[str], where: str, defects: list[str],
) -> tuple[str, list[str]]:
    """Replace encoded-word runs by atoms so a decoded comma cannot split an address."""
    decoded: list[str] = []
    pieces = []
    for _start, _end, charset, payload in _runs_without_gaps(text):
        if charset is None:
            pieces.append(payload)
            continue
        decoded.append(decode_bytes(bytes(payload), charset, hints, where, defects))
        pieces.append(_PLACEHOLDER.format(len(decoded) - 1))
    return "".join(pieces), decoded


def _restore(text: str, decoded: list[str]) -> str:
    restored = _PLACEHOLDER_RE.sub(lambda match: decoded[int(match.group(1))], text)
    return _WHITESPACE.sub(" ", restored).strip().strip('"').strip()


def parse_addresses(
    raw: str, hints: Sequence[str] = (), where: str = "To", defects: list[str] | None = None,
) -> tuple[Address, ...]:
    """Parse an address-list header value into addresses, skipping empty groups.

    Args:
        raw: The raw header value.
        hints: Charset labels declared elsewhere in the message.
        where: Header name used in defect texts.
        defects: List that receives defect texts.

    Returns:
        One Address per mailbox. A name without any addr-spec gives an Address
        with an empty ``address``.
    """
    sink = defects if defects is not None else []
    text = _FOLD.sub("", _raw_to_text(raw, hints, where, sink))
    protected, decoded = _protect_encoded_words(text, hints, where, sink)
    pairs = _address_pairs(protected, where, sink)

    addresses = []
    for name, addr_spec in pairs:
        name = _restore(name, decoded)
        addr_spec = _restore(addr_spec, decoded)
        if "@" not in addr_spec:
            name = name or addr_spec.strip("<>")
            addr_spec = ""
        if name or addr_spec:
            addresses.append(Address(name, addr_spec.lower()))
    return tuple(addresses)


def _address_pairs(text: str, where: str, defects: list[str]) -> list[tuple[str, str]]:
    """Return (name, addr_spec) pairs from the RFC 5322 parser, with compat fallback.

    The modern parser understands groups and reports defects, but drops the
    old-style ``addr (Name)`` comment, so the compat parser fills in that name.
    """
    legacy = email.utils.getaddresses([text])
    legacy_names = {addr.lower(): name for name, addr in legacy if addr}
    try:
        header = policy.default.header_factory(where, text)
        mailboxes = [(item.display_name, item.addr_spec) for item in header.addresses]
        defects.extend(f"{where}: {type(defect).__name__}" for defect in header.defects)
    except Exception as exc:  # noqa: BLE001 - the modern parser has raised on odd input.
        defects.append(f"{where}: address parser failed with {type(exc).__name__}")
        return [(name, addr) for name, addr in legacy if name or addr]

    pairs = []
    for name, addr_spec in mailboxes:
        legacy_name = legacy_names.get(addr_spec.lower(), "")
        if legacy_name.startswith(name) and len(legacy_name) > len(name):
            name = legacy_name
        pairs.append((name, "" if addr_spec == "<>" else addr_spec))
    return pairs


# ---------------------------------------------------------------------------
# Dates and ids
# ---------------------------------------------------------------------------


def parse_date(value: str | None, defects: list[str] | None = None) -> datetime | None:
    """Parse an RFC 5322 date into an aware UTC datetime.

    A date without a zone, or with ``-0000``, is taken as UTC.

    Args:
        value: The decoded Date header, or None.
        defects: List that receives a defect text when the value is not a date.

    Returns:
        The UTC datetime, or None when ``value`` is missing or invalid.
    """
    if not value:
        return None
    for candidate in (value, re.sub(r"\([^)]*\)", " ", value).strip()):
        try:
            parsed = email.utils.parsedate_to_datetime(candidate)
        except (TypeError, ValueError, IndexError, OverflowError):
            continue
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.astimezone(timezone.utc)
    if defects is not None:
        defects.append(DEFECT_DATE.format(value=value[:80]))
    return None


def parse_message_ids(value: str | None) -> tuple[str, ...]:
    """Return the ``<id>`` tokens of a Message-ID, In-Reply-To or References value."""
    if not value:
        return ()
    found = _MESSAGE_ID.findall(value)
    if found:
        return tuple(found)
    return tuple(token for token in value.split() if "@" in token)


# ---------------------------------------------------------------------------
# HTML to text
# ---------------------------------------------------------------------------


class _TextExtractor(HTMLParser):
    """Collect visible text, with line breaks at block elements."""

    _BLOCKS = frozenset({
        "address", "article", "blockquote", "br", "div", "dl", "dt", "dd", "footer", "form",
        "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "ol", "p", "pre", "section",
        "table", "tr", "ul",
    })
    _HIDDEN = frozenset({"head", "script", "style", "title", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self._hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self._HIDDEN:
            self._hidden_depth += 1
        elif tag in self._BLOCKS:
            self.pieces.append("\n")
        elif tag == "td":
            self.pieces.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden_depth = max(0, self._hidden_depth - 1)
        elif tag in self._BLOCKS:
            self.pieces.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden_depth:
            self.pieces.append(data)


def html_to_text(html: str) -> str:
    """Convert HTML to plain text: visible text only, one line per block element.

    Args:
        html: The HTML document or fragment.

    Returns:
        Text with runs of spaces collapsed and at most one blank line in a row.
    """
    extractor = _TextExtractor()
    try:
        extractor.feed(html)
        extractor.close()
    except (AssertionError, ValueError):
        pass
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in "".join(extractor.pieces).split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# ---------------------------------------------------------------------------
# MIME structure
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class _Walk:
    """Mutable state collected while walking the MIME tree."""

    hints: tuple[str, ...]
    defects: list[str]
    plain: list[str] = dataclasses.field(default_factory=list)
    html: list[str] = dataclasses.field(default_factory=list)
    attachments: list[Attachment] = dataclasses.field(default_factory=list)
    delivery_status: list[dict[str, str]] = dataclasses.field(default_factory=list)
    feedback_report: dict[str, str] | None = None
    disposition_notification: dict[str, str] | None = None
    returned_headers: HeaderMap | None = None
    embedded: list[Message] = dataclasses.field(default_factory=list)


def _charset_hints(message: Message) -> tuple[str, ...]:
    hints: list[str] = []
    for part in _iter_parts(message, 0, []):
        charset = _safe_param(part, "charset")
        if charset and charset.lower() not in hints:
            hints.append(charset.lower())
    return tuple(hints)


def _iter_parts(message: Message, depth: int, defects: list[str]) -> Iterator[Message]:
    """Yield ``message`` and its descendants, stopping at ``MAX_PART_DEPTH``."""
    if depth > MAX_PART_DEPTH:
        defects.append(DEFECT_DEPTH.format(limit=MAX_PART_DEPTH))
        return
    yield message
    payload = message.get_payload()
    if message.is_multipart() and isinstance(payload, list):
        for child in payload:
            if isinstance(child, Message):
                yield from _iter_parts(child, depth + 1, defects)


def _safe_param(part: Message, name: str, header: str = "content-type") -> str | None:
    try:
        value = part.get_param(name, header=header)
    except Exception:  # noqa: BLE001 - odd parameters can break either policy.
        return None
    if isinstance(value, tuple):
        value = email.utils.collapse_rfc2231_value(value)
    return str(value) if value is not None else None


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:  # noqa: BLE001 - a broken Content-Type falls back to the RFC default.
        return "text/plain"


def _filename(part: Message, hints: Sequence[str], defects: list[str]) -> str:
    try:
        name = part.get_filename() or _safe_param(part, "name") or ""
    except Exception:  # noqa: BLE001 - odd parameters can break either policy.
        name = _safe_param(part, "name") or ""
    return decode_header_text(str(name), hints, "filename", defects)


def _disposition(part: Message) -> str:
    value = part.get("content-disposition")
    if value is None:
        return ""
    return str(value).split(";", 1)[0].strip().lower()


def _payload_bytes(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - broken base64 or CTE must not stop the walk.
        payload = None
    return payload if isinstance(payload, bytes) else b""


def _part_text(part: Message, walk: _Walk) -> str:
    charset = _safe_param(part, "charset")
    return decode_bytes(_payload_bytes(part), charset, walk.hints, _content_type(part), walk.defects)


def _walk_part(part: Message, walk: _Walk, depth: int, in_report: bool) -> None:
    """Collect body text, attachments and report fields from ``part`` downwards."""
    if depth > MAX_PART_DEPTH:
        walk.defects.append(DEFECT_DEPTH.format(limit=MAX_PART_DEPTH))
        return
    content_type = _content_type(part)
    if content_type.startswith("multipart/"):
        payload = part.get_payload()
        if not isinstance(payload, list):
            # A multipart without a usable boundary keeps its body as one string.
            walk.plain.append(_part_text(part, walk))
            return
        in_report = in_report or content_type == "multipart/report"
        for child in payload:
            if isinstance(child, Message):
                _walk_part(child, walk, depth + 1, in_report)
        return
    if content_type.startswith("message/"):
        _walk_message_part(part, content_type, walk, in_report)
        return
    _walk_leaf(part, content_type, walk, in_report)


def _walk_leaf(part: Message, content_type: str, walk: _Walk, in_report: bool) -> None:
    filename = _filename(part, walk.hints, walk.defects)
    disposition = _disposition(part)
    if filename or disposition == "attachment":
        walk.attachments.append(Attachment(filename, content_type, len(_payload_bytes(part))))
        return
    if content_type == "text/rfc822-headers" and in_report:
        walk.returned_headers = _headers_from_text(_part_text(part, walk), walk)
    elif content_type == "text/plain":
        walk.plain.append(_part_text(part, walk))
    elif content_type == "text/html":
        walk.html.append(_part_text(part, walk))


def _walk_message_part(part: Message, content_type: str, walk: _Walk, in_report: bool) -> None:
    payload = part.get_payload()
    blocks = [block for block in payload if isinstance(block, Message)] if isinstance(payload, list) else []
    if content_type in ("message/delivery-status", "message/global-delivery-status"):
        walk.delivery_status.extend(_fields(block, walk) for block in blocks)
    elif content_type == "message/feedback-report" and blocks:
        walk.feedback_report = _fields(blocks[0], walk)
    elif content_type == "message/disposition-notification" and blocks:
        walk.disposition_notification = _fields(blocks[0], walk)
    elif blocks and in_report:
        walk.returned_headers = _header_map(blocks[0], walk.hints, walk.defects)
    elif blocks:
        walk.embedded.append(blocks[0])
        filename = _filename(part, walk.hints, walk.defects)
        if filename or _disposition(part) == "attachment":
            walk.attachments.append(Attachment(filename, content_type, _size_of(blocks[0])))


def _size_of(message: Message) -> int:
    try:
        return len(message.as_bytes())
    except Exception:  # noqa: BLE001 - re-serialising a broken part can fail.
        return 0


def _fields(block: Message, walk: _Walk) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name, raw in block.raw_items():
        fields.setdefault(name.lower(), decode_header_text(str(raw), walk.hints, name, walk.defects))
    return fields


def _headers_from_text(text: str, walk: _Walk) -> HeaderMap:
    block = HeaderParser(policy=policy.compat32).parsestr(text, headersonly=True)
    return _header_map(block, walk.hints, walk.defects)


def _header_map(message: Message, hints: Sequence[str], defects: list[str]) -> HeaderMap:
    items = []
    for name, raw in message.raw_items():
        items.append((name, decode_header_text(str(raw), hints, name, defects)))
    return HeaderMap(items)


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------


def normalise_line_endings(raw: bytes) -> bytes:
    """Convert CRLF and CR-only line endings to LF.

    NOTE: a part with Content-Transfer-Encoding ``binary`` that contains CR
    bytes is changed too; such parts are rare in mail and only affect sizes.
    """
    return raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def _parse_structure(raw: bytes, defects: list[str]) -> Message:
    """Parse with the modern policy, falling back to compat32 when it raises."""
    try:
        return BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:  # noqa: BLE001 - fall back to the tolerant policy.
        defects.append(f"policy.default parser failed with {type(exc).__name__}")
    try:
        return BytesParser(policy=policy.compat32).parsebytes(raw)
    except Exception as exc:  # noqa: BLE001 - an empty message is the last resort.
        defects.append(DEFECT_PARSE_FAILED.format(error=type(exc).__name__))
        return Message()


def parse_bytes(raw: bytes) -> ParsedMessage:
    """Parse a raw RFC 5322 message.

    Args:
        raw: The message bytes, with any line endings and an optional mbox
            ``From `` first line.

    Returns:
        The decoded message. Malformed input never raises; each problem is
        listed in ``defects``.
    """
    defects: list[str] = []
    message = _parse_structure(normalise_line_endings(raw), defects)
    try:
        return parse_message(message, defects)
    except Exception as exc:  # noqa: BLE001 - callers rely on parse_bytes not raising.
        logger.warning("message decoding failed with %s; returning empty fields", type(exc).__name__)
        defects.append(DEFECT_BUILD_FAILED.format(error=type(exc).__name__))
        return ParsedMessage(defects=tuple(defects))


def parse_message(message: Message, defects: list[str] | None = None) -> ParsedMessage:
    """Build a ParsedMessage from an already parsed ``email.message.Message``.

    Args:
        message: A message from ``email.parser`` with any policy.
        defects: Defect texts collected before this call; extended in place.

    Returns:
        The decoded message.
    """
    defects = [] if defects is None else defects
    for part in _iter_parts(message, 0, []):
        defects.extend(type(defect).__name__ for defect in getattr(part, "defects", ()))

    hints = _charset_hints(message)
    headers = _header_map(message, hints, defects)
    walk = _Walk(hints=hints, defects=defects)
    _walk_part(message, walk, 0, in_report=False)
    return _assemble(message, headers, walk)


def _first_address(raw: str | None, hints: Sequence[str], where: str, defects: list[str]) -> Address | None:
    if raw is None:
        return None
    found = parse_addresses(raw, hints, where, defects)
    return found[0] if found else None


def _raw_header(message: Message, name: str) -> str | None:
    values = _raw_headers(message, name)
    return values[0] if values else None


def _raw_headers(message: Message, name: str) -> list[str]:
    wanted = name.lower()
    return [str(value) for key, value in message.raw_items() if key.lower() == wanted]


def _address_list(message: Message, name: str, hints: Sequence[str], defects: list[str]) -> tuple[Address, ...]:
    found: list[Address] = []
    for raw in _raw_headers(message, name):
        found.extend(parse_addresses(raw, hints, name, defects))
    return tuple(found)


def _body_text(walk: _Walk) -> tuple[str, bool]:
    """Pick the body: text/plain parts, else HTML as text, else an embedded message."""
    plain = "\n\n".join(text.strip("\n") for text in walk.plain if text.strip())
    if plain:
        return plain, bool(walk.html)
    if walk.html:
        return "\n\n".join(html_to_text(html) for html in walk.html), True
    for embedded in walk.embedded:
        inner = _Walk(hints=walk.hints, defects=[])
        _walk_part(embedded, inner, 1, in_report=False)
        text, has_html = _body_text(inner)
        if text:
            return text, has_html
    return "", False


def _assemble(message: Message, headers: HeaderMap, walk: _Walk) -> ParsedMessage:
    hints, defects = walk.hints, walk.defects
    body_text, has_html = _body_text(walk)
    message_ids = parse_message_ids(headers.get("message-id"))
    in_reply_to = parse_message_ids(headers.get("in-reply-to"))
    return ParsedMessage(
        message_id=message_ids[0] if message_ids else None,
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=parse_message_ids(" ".join(headers.get_all("references"))),
        subject=headers.get("subject") or "",
        thread_topic=headers.get("thread-topic"),
        from_address=_first_address(_raw_header(message, "from"), hints, "From", defects),
        sender=_first_address(_raw_header(message, "sender"), hints, "Sender", defects),
        reply_to=_address_list(message, "reply-to", hints, defects),
        to=_address_list(message, "to", hints, defects),
        cc=_address_list(message, "cc", hints, defects),
        bcc=_address_list(message, "bcc", hints, defects),
        date=parse_date(headers.get("date"), defects),
        body_text=body_text,
        has_html=has_html,
        attachments=tuple(walk.attachments),
        headers=headers,
        content_type=_content_type(message),
        report_type=_report_type(message),
        delivery_status=tuple(walk.delivery_status),
        feedback_report=walk.feedback_report,
        disposition_notification=walk.disposition_notification,
        returned_headers=walk.returned_headers,
        defects=tuple(defects),
    )


def _report_type(message: Message) -> str | None:
    if _content_type(message) != "multipart/report":
        return None
    value = _safe_param(message, "report-type")
    return value.strip().lower() if value else None
