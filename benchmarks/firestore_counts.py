"""Count Firestore RPCs a client makes, by wrapping its GAPIC methods."""

from __future__ import annotations

from collections import Counter

from google.cloud import firestore

COUNTED_METHODS = ("begin_transaction", "batch_get_documents", "commit", "rollback", "run_query",
                   "get_document", "batch_write")


def count_rpcs(client: firestore.Client) -> Counter:
    """Wrap ``client``'s RPC methods so each call increments the returned counter."""
    calls: Counter = Counter()
    api = client._firestore_api
    for name in COUNTED_METHODS:
        original = getattr(api, name)

        def counted(*args, _original=original, _name=name, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        setattr(api, name, counted)
    return calls
