"""Reading request bodies: strict JSON decoders, and what to say when a body cannot be read."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from basketry.serving.errors import ApiError
from basketry.serving.schemas import RequestSchemas


@dataclass(frozen=True)
class Decoders:
    """The strict decoders of the request types both paths read bodies with."""

    schemas: RequestSchemas
    one: Callable[[bytes], Any]
    batch: Callable[[bytes], Any]

    @classmethod
    def of(cls, schemas: RequestSchemas) -> Decoders:
        return cls(schemas, strict_decoder(schemas.recommendation),
                   strict_decoder(schemas.batch))


def strict_decoder(kind: type) -> Callable[[bytes], Any]:
    """A JSON decoder of ``kind`` with strict types: ``"k": "5"`` (a string) is refused.

    One exception, as JSON Schema defines integers: a number with a zero fractional part
    (``5.0``, ``5e0``) is an integer, so ``k`` may be written so. msgspec's strict mode refuses
    it and its lax mode also takes strings for numbers, so such a body is read again with the
    integral values of ``k`` turned into ints (the rare path), still strictly.
    """
    strict = msgspec.json.Decoder(kind).decode
    untyped = msgspec.json.Decoder().decode

    def decode(body: bytes) -> Any:
        try:
            return strict(body)
        except msgspec.ValidationError as exc:
            if "got `float`" not in str(exc):
                raise
        return msgspec.convert(_integral_k(untyped(body)), kind)

    return decode


def _integral_k(value: Any) -> Any:
    """``value`` with every ``"k": <integral float>`` member turned into an int."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "k" and isinstance(item, float) and item.is_integer():
                out[key] = int(item)
            else:
                out[key] = _integral_k(item)
        return out
    if isinstance(value, list):
        return [_integral_k(item) for item in value]
    return value


def decode_body(decode: Callable[[bytes], Any], body: bytes) -> Any:
    """``decode(body)``, its failures as the API states them: 422 ``invalid_request`` naming
    the field at fault, 400 ``invalid_body`` for what is not UTF-8 JSON."""
    try:
        return decode(body)
    except msgspec.ValidationError as exc:
        message, field = split_validation_message(str(exc))
        raise ApiError(422, "invalid_request", message, field) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_body", undecodable_body(body, exc)) from None


def split_validation_message(message: str) -> tuple[str, str | None]:
    """A msgspec validation message -> (message without location, field such as basket[2]).

    ``Expected `str`, got `int` - at `$.basket[0]``` -> ("Expected `str`, got `int`",
    "basket[0]"); a missing or unknown field is named after its parent's location.
    """
    text, field = message, None
    marker = " - at `$"
    at = message.find(marker)
    if at >= 0:
        text = message[:at]
        field = message[at + len(marker): message.rfind("`")].lstrip(".") or None
    for quote in ("missing required field `", "unknown field `"):
        start = text.find(quote)
        if start >= 0:
            name = text[start + len(quote): text.find("`", start + len(quote))]
            field = f"{field}.{name}" if field else name
            break
    return text, field


#: A \\uXXXX escape of a UTF-16 surrogate (a pair of them is one character; alone, none).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def undecodable_body(body: bytes, exc: Exception) -> str:
    """What is wrong with a body msgspec could not read, placed in the body (the error's own
    offset is within the string it was decoding, and a lone surrogate escape is reported as
    "truncated" input)."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as bad:
        line = body.count(b"\n", 0, bad.start) + 1
        return (f"the body is not valid UTF-8: {bad.reason} (byte {body[bad.start]:#04x}) at "
                f"byte {bad.start}, line {line}")
    if isinstance(exc, msgspec.DecodeError):
        escape = _SURROGATE_ESCAPE.search(body)
        if escape is not None and "truncated" in str(exc):
            return (f"the body is not valid JSON text: {escape.group().decode()} at byte "
                    f"{escape.start()} is half of a UTF-16 surrogate pair, not a character")
        return f"the body is not valid JSON: {exc}"
    return f"the body is not valid UTF-8: {exc}"
