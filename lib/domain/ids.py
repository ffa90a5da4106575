"""Deterministic document ids: the same input always names the same document.

Retries and duplicate deliveries therefore write the same documents instead of
creating new ones.
"""

from __future__ import annotations

import hashlib
import re

_SLUG_STRIP = re.compile(r"[^a-z0-9]+")


def digest(*parts: str, length: int = 20) -> str:
    """Return ``length`` hex characters of the SHA-256 of the NUL-joined parts."""
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:length]


def slug(text: str) -> str:
    """Return an id-safe slug of ``a-z``, ``0-9`` and ``-``.

    Text with non-ASCII letters, or with no letter or digit at all, gets the first
    16 hex digits of the SHA-256 of its casefolded form instead, so two Chinese
    company names never share a slug made of their ASCII parts.
    """
    folded = text.casefold()
    slugged = _SLUG_STRIP.sub("-", folded).strip("-")
    if not folded.isascii() or not slugged:
        return hashlib.sha256(folded.encode("utf-8")).hexdigest()[:16]
    return slugged


def company_id(domain: str | None, name: str | None) -> str | None:
    """Name a company by its email domain, else by its name; None when neither is known."""
    if domain:
        return "co-" + slug(domain)
    if name:
        return "co-" + slug(name)
    return None


def key_doc_id(kind: str, value: str) -> str:
    """Id of a uniqueness key document, e.g. ``email:amy@example.com``."""
    return f"{kind}:{value.replace('/', '%2F')}"
