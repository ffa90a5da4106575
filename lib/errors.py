"""Exception hierarchy shared by every layer.

The HTTP edge (``lib/web.py``) maps these to status codes. Services and
adapters raise them and never deal with HTTP.
"""


class CrmError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidInputError(CrmError):
    """A request or record field is missing or malformed (HTTP 400).

    Args:
        field: Dotted path of the offending field, e.g. ``"fields.email"``.
        expected: What a valid value looks like.
        found: The value received, shortened; never a secret.
    """

    def __init__(self, field: str, expected: str, found: object = None):
        self.field = field
        self.expected = expected
        self.found = found
        shown = "" if found is None else f", found {str(found)[:80]!r}"
        super().__init__(f"invalid {field}: expected {expected}{shown}")


class SignatureError(CrmError):
    """A request signature is missing, malformed, wrong or expired (HTTP 401)."""


class PayloadTooLargeError(CrmError):
    """A request body exceeds the configured size limit (HTTP 413)."""


class UnsupportedMediaTypeError(CrmError):
    """A request has a content type the source does not accept (HTTP 415)."""


class UnknownSourceError(CrmError):
    """A request names a source id that the configuration does not define (HTTP 404)."""


class ConfigError(CrmError):
    """The configuration file is invalid; the message names the key path."""


class TransientError(CrmError):
    """A dependency failed in a way that a retry can fix (HTTP 503)."""


class PermanentDeliveryError(CrmError):
    """An outbox intent can never be delivered, e.g. the recipient address is invalid."""
