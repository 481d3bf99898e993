"""Reading request bodies: strict JSON decoders, and what to say when a body cannot be read."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin

import msgspec

from basketry.serving.errors import ApiError, FieldErrors
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


#: Invalid fields listed at most in one answer (a batch of bad baskets would list thousands).
MAX_ERRORS = 100


class InvalidFields(msgspec.ValidationError):
    """A body of the wrong shape, with every invalid field found (``errors``); its message is
    the decoder's own (the first field at fault)."""

    def __init__(self, first: msgspec.ValidationError, errors: FieldErrors) -> None:
        super().__init__(str(first))
        self.errors = errors


def strict_decoder(kind: type) -> Callable[[bytes], Any]:
    """A JSON decoder of ``kind`` with strict types: ``"k": "5"`` (a string) is refused.

    One exception, as JSON Schema defines integers: a number with a zero fractional part
    (``5.0``, ``5e0``) is an integer, so ``k`` may be written so. msgspec's strict mode refuses
    it and its lax mode also takes strings for numbers, so such a body is read again with the
    integral values of ``k`` turned into ints (the rare path), still strictly.

    A refused body is read again without types (only then: the rare path), for two reasons.
    msgspec checks types as it parses, so ``{"basket": [85123A}`` fails on the type of ``8``
    before the syntax is seen: a body that is not JSON is a :class:`msgspec.DecodeError`
    whatever its first value. And its decoder stops at the first invalid field: the others are
    found on the untyped value (:func:`field_errors`) and raised as :class:`InvalidFields`.
    """
    strict = msgspec.json.Decoder(kind).decode
    untyped = msgspec.json.Decoder().decode

    def decode(body: bytes) -> Any:
        try:
            return strict(body)
        except msgspec.ValidationError as exc:
            first = exc
        value = _integral_k(untyped(body))  # a DecodeError when the body is not JSON
        if "got `float`" in str(first):
            try:
                return msgspec.convert(value, kind)
            except msgspec.ValidationError as exc:
                first = exc
        message, field = split_validation_message(str(first))
        found = [(field, message), *field_errors(value, kind)]
        raise InvalidFields(first, list(dict.fromkeys(found))[:MAX_ERRORS]) from None

    return decode


def field_errors(value: Any, kind: Any, path: str = "") -> FieldErrors:
    """Every invalid field of ``value`` (decoded JSON) as ``kind``: the fields of a struct
    (unknown, missing or invalid) and the elements of a list, each checked on its own; a
    value whose parts are all valid is reported as a whole (a list over its length)."""
    try:
        msgspec.convert(value, kind)
        return []
    except msgspec.ValidationError as exc:
        message, at = split_validation_message(str(exc))
    whole = [(_join(path, at), message)]
    base = get_args(kind)[0] if get_origin(kind) is Annotated else kind
    found: FieldErrors = []
    if isinstance(base, type) and issubclass(base, msgspec.Struct) and isinstance(value, dict):
        fields = {f.encode_name: f for f in msgspec.structs.fields(base)}
        found = [(_join(path, key), f"Object contains unknown field `{key}`")
                 for key in value if key not in fields]
        for name, spec in fields.items():
            if name in value:
                found.extend(field_errors(value[name], spec.type, _join(path, name)))
            elif spec.required:
                found.append((_join(path, name), f"Object missing required field `{name}`"))
    elif get_origin(base) is list and isinstance(value, list):
        if base is not kind:  # the list's own constraints (its length), elements aside
            try:
                msgspec.convert(value, Annotated[(list[Any], *get_args(kind)[1:])])
            except msgspec.ValidationError as exc:
                found.append((path or None, split_validation_message(str(exc))[0]))
        item = get_args(base)[0]
        for index, element in enumerate(value):
            found.extend(field_errors(element, item, f"{path}[{index}]"))
    return found or whole


def _join(path: str, field: str | None) -> str | None:
    if not field:
        return path or None
    if not path:
        return field
    return f"{path}{field}" if field.startswith("[") else f"{path}.{field}"


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
    the field at fault (and listing every one found), 400 ``invalid_body`` for what is not
    UTF-8 JSON."""
    try:
        return decode(body)
    except msgspec.ValidationError as exc:
        message, field = split_validation_message(str(exc))
        errors = exc.errors if isinstance(exc, InvalidFields) else None
        raise ApiError(422, "invalid_request", message, field, errors) from None
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
