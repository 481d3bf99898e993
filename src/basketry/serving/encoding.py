"""What an answer looks like, in one place: the answer documents (the framework path) and the
same answers written as bytes from pre-encoded pieces (the fast path and the protocol).

The fast path writes the documents from pieces kept with the model's snapshot
(:attr:`Snapshot.encoded`): per rule (by rank), its item's ``{"item":..,"label":..,"score":``
head and its ``,"fallback":false,"rule":{..}}`` tail; per popular item (by ~id), its head.
Only the score (which may depend on the basket) is encoded per answer. The cache holds ints
and bytes only, which the garbage collector does not track. The bytes are those msgspec writes
for the same :class:`RecommendationResponse` (tests check it byte for byte).
"""

from __future__ import annotations

import msgspec

from basketry.model import FiredRule, Model, Ranked
from basketry.serving import schemas as S
from basketry.serving.errors import ApiError, FieldErrors
from basketry.serving.state import Snapshot

#: At most this many encoded pieces are kept per model (then the cache starts again).
MAX_ENCODED = 500_000

_FALLBACK_TAIL = b',"fallback":true,"rule":null}'


def rule_document(rule: FiredRule) -> S.Rule:
    return S.Rule(antecedent=list(rule.antecedent), confidence=rule.confidence, lift=rule.lift,
                  support=rule.support, count=rule.count)


def recommended_items(model: Model, ranked: Ranked) -> list[S.RecommendedItem]:
    """The answer's items as documents (the framework path)."""
    items, labels = model.items, model.labels
    return [S.RecommendedItem(item=items[i], label=labels[i], score=score, fallback=rank < 0,
                              rule=None if rank < 0 else rule_document(model.explain(rank)))
            for i, rank, score in zip(ranked.items, ranked.ranks, ranked.scores, strict=True)]


#: Titles that the error code does not spell by itself.
_TITLES = {"http_error": "HTTP error"}


def problem(rid: str, status: int, error: str, message: str, field: str | None = None,
            errors: FieldErrors | None = None) -> S.ErrorResponse:
    """The problem document of an error (every path writes its errors with this).

    ``errors`` (every invalid field found) defaults to ``field`` alone, none when no field is
    at fault; ``field`` and ``message`` stay those of the first, as before the list existed.
    """
    if errors is None:
        errors = [] if field is None else [(field, message)]
    return S.ErrorResponse(
        type=f"urn:basketry:problem:{error}",
        title=_TITLES.get(error) or error.replace("_", " ").capitalize(),
        status=status, detail=message, instance=f"urn:basketry:request:{rid}",
        error=error, message=message, field=field, request_id=rid,
        errors=[S.FieldError(field=f, message=m) for f, m in errors])


def error_document(rid: str, status: int, error: str, message: str) -> bytes:
    """A problem document as bytes (for callers without an :class:`AnswerEncoder`: the
    protocol's own refusals)."""
    return msgspec.json.encode(problem(rid, status, error, message))


class AnswerEncoder:
    """Writes the fast path's answers as bytes: recommendations, batches and errors."""

    def __init__(self) -> None:
        self._encode = msgspec.json.Encoder().encode  # one per application: not shared

    def error(self, rid: str, exc: ApiError) -> bytes:
        return self._encode(problem(rid, exc.status, exc.error, exc.message, exc.field,
                                    exc.errors))

    def recommendation(self, snap: Snapshot, ranked: Ranked, rid: bytes) -> bytes:
        """A ``RecommendationResponse`` (``rid``: the request id, encoded)."""
        encode = self._encode
        return b"".join((b'{"request_id":"', rid, b'","model_version":', encode(snap.version),
                         b',"items":[', self._items(snap, ranked), b'],"unknown":',
                         encode(ranked.unknown) if ranked.unknown else b"[]", b"}"))

    def batch(self, snap: Snapshot, answers: list[bytes], rid: bytes) -> bytes:
        """A ``BatchResponse`` of answers written by :meth:`recommendation`."""
        return b"".join((b'{"request_id":"', rid, b'","model_version":',
                         self._encode(snap.version), b',"results":[', b",".join(answers),
                         b"]}"))

    def _items(self, snap: Snapshot, ranked: Ranked) -> bytes:
        cache = snap.encoded
        if len(cache) > MAX_ENCODED:
            cache.clear()
        model = snap.model
        encode = self._encode
        out = []
        for item, rank, score in zip(ranked.items, ranked.ranks, ranked.scores, strict=True):
            if rank >= 0:
                pieces = cache.get(rank)
                if pieces is None:
                    pieces = cache[rank] = (self._head(model, item), b"".join((
                        b',"fallback":false,"rule":', encode(rule_document(model.explain(rank))),
                        b"}")))
                out.append(b"".join((pieces[0], encode(score), pieces[1])))
            else:
                head = cache.get(~item)
                if head is None:
                    head = cache[~item] = self._head(model, item)
                out.append(b"".join((head, encode(score), _FALLBACK_TAIL)))
        return b",".join(out)

    def _head(self, model: Model, item: int) -> bytes:
        encode = self._encode
        return b"".join((b'{"item":', encode(model.items[item]), b',"label":',
                         encode(model.labels[item]), b',"score":'))
