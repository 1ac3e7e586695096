"""Hypothesis strategies that build any protobuf request from its descriptor, biased toward trouble.

Strings: short random text (NUL bytes and astral characters included), huge runs of one character,
UUIDs, base64 garbage, and `pool` values (real ids, etags, page tokens of the system under test) as they
are or mutated. Integers: anywhere in the field's range, with its edges and the service's limits
(±1) favoured. Enums: known values and arbitrary unknown ones. Field masks: valid and invalid paths.
Timestamps: out-of-range seconds and nanos. Repeated fields: a few items, or a hundred and more.
"""

from __future__ import annotations

import base64
import string
from collections.abc import Sequence
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
# The services' own limits, each with its neighbours: page sizes, quantities, deltas, lengths, counts.
_LIMITS = (0, 1, 2, 10, 50, 99, 100, 101, 128, 200, 201, 1000, 1001, 2000, 2001, 10_000, 10_001, 1_000_000)
_INTERESTING_INTS = tuple(sorted({n for limit in _LIMITS for n in (limit - 1, limit, limit + 1, -limit)}))
_HUGE_UNITS = ("A", "\x00", "é", "😀", " ", "-", "%")
_MASK_PATHS = ("name", "description", "price", "*", "sku", "id", "stock_on_hand", "price.currency_code", "")
# What a metadata value may hold (gRPC refuses anything else before it is sent).
METADATA_ALPHABET = "".join(c for c in string.printable if c not in "\t\n\r\x0b\x0c")


def _mutations(value: str) -> st.SearchStrategy[str]:
    """`value` truncated, with one character replaced, doubled, or with a suffix."""
    if not value:
        return st.just(value)
    return st.one_of(
        st.integers(0, len(value) - 1).map(lambda n: value[:n]),
        st.tuples(st.integers(0, len(value) - 1), st.sampled_from("A0_-=/+.\x00")).map(
            lambda t: value[: t[0]] + t[1] + value[t[0] + 1 :]
        ),
        st.just(value + value),
        st.text(max_size=5).map(lambda suffix: value + suffix),
    )


def strings(pool: Sequence[str]) -> st.SearchStrategy[str]:
    choices: list[st.SearchStrategy[str]] = [
        st.text(max_size=40),
        st.text(alphabet=string.ascii_uppercase + string.digits + "-_", min_size=1, max_size=70),
        st.tuples(st.sampled_from(_HUGE_UNITS), st.integers(250, 150_000)).map(lambda t: t[0] * t[1]),
        st.uuids().map(str),
        st.uuids().map(lambda u: str(u).upper()),
        st.binary(max_size=64).map(lambda b: base64.urlsafe_b64encode(b).decode()),
        st.sampled_from(
            ["", " ", "\x00", "null", "*", "-1", "1e9", "../../etc/passwd", "'; DROP TABLE x;--"]
        ),
    ]
    if pool:
        choices.append(st.sampled_from(list(pool)))
        choices.append(st.sampled_from(list(pool)).flatmap(_mutations))
    return st.one_of(*choices)


def integers(field: FieldDescriptor) -> st.SearchStrategy[int]:
    low, high = _INT_RANGES[field.type]
    edges = [n for n in (*_INTERESTING_INTS, low, high) if low <= n <= high]
    return st.one_of(st.sampled_from(edges), st.integers(low, high))


def _timestamps() -> st.SearchStrategy[dict[str, int]]:
    seconds = st.one_of(
        st.integers(-(2**63), 2**63 - 1),
        st.sampled_from([0, -62_135_596_801, -62_135_596_800, 253_402_300_799, 253_402_300_800]),
        st.integers(1_600_000_000, 2_000_000_000),
    )
    nanos = st.one_of(st.sampled_from([0, -1, 999_999_999, 1_000_000_000]), st.integers(-(2**31), 2**31 - 1))
    return st.fixed_dictionaries({}, optional={"seconds": seconds, "nanos": nanos})


def _field_masks() -> st.SearchStrategy[dict[str, list[str]]]:
    path = st.one_of(st.sampled_from(_MASK_PATHS), st.text(max_size=20))
    return st.builds(lambda paths: {"paths": paths}, st.lists(path, max_size=5))


def _value(field: FieldDescriptor, pool: Sequence[str], depth: int) -> st.SearchStrategy[Any]:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        name = field.message_type.full_name
        if name == "google.protobuf.Timestamp":
            return _timestamps()
        if name == "google.protobuf.FieldMask":
            return _field_masks()
        return messages(field.message_type, pool, depth + 1)
    if field.type == FieldDescriptor.TYPE_STRING:
        return strings(pool)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if field.type == FieldDescriptor.TYPE_ENUM:
        known = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(known), st.integers(-(2**31), 2**31 - 1))
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=32)
    return integers(field)


def _field(field: FieldDescriptor, pool: Sequence[str], depth: int) -> st.SearchStrategy[Any]:
    value = _value(field, pool, depth)
    if not field.is_repeated:
        return value
    few = st.lists(value, max_size=4)
    # Many copies of one item: over every count limit without generating a hundred distinct items.
    many = st.tuples(value, st.integers(90, 150)).map(lambda t: [t[0]] * t[1])
    return st.one_of(few, many)


def messages(descriptor: Descriptor, pool: Sequence[str] = (), depth: int = 0) -> st.SearchStrategy[Message]:
    """Messages of `descriptor`'s type; any field may be left unset."""
    message_class = message_factory.GetMessageClass(descriptor)
    if depth > 3:
        return st.just(message_class())
    optional = {field.name: _field(field, pool, depth) for field in descriptor.fields}
    return st.fixed_dictionaries({}, optional=optional).map(lambda values: _build(message_class, values))


def _build(message_class: type[Message], values: dict[str, Any]) -> Message:
    message = message_class()
    descriptor = message.DESCRIPTOR
    for name, value in values.items():
        field = descriptor.fields_by_name[name]
        if field.is_repeated:
            target = getattr(message, name)
            for item in value:
                if field.type == FieldDescriptor.TYPE_MESSAGE:
                    _merge(target.add(), item)
                else:
                    target.append(item)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            _merge(getattr(message, name), value)
        else:
            setattr(message, name, value)
    return message


def _merge(target: Message, value: Any) -> None:
    if isinstance(value, Message):
        target.CopyFrom(value)
        return
    # Well-known types come as dicts of their fields; setting none still marks the field present.
    target.SetInParent()
    for key, item in value.items():
        if isinstance(item, list):
            getattr(target, key).extend(item)
        else:
            setattr(target, key, item)


def authorization(valid: str, pool: Sequence[str]) -> st.SearchStrategy[tuple[tuple[str, str], ...]]:
    """Call metadata carrying no token, a mangled one, someone else's scheme or plain garbage (and now
    and then a valid token, spelled differently)."""
    segment = st.binary(max_size=48).map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("="))
    garbage = st.one_of(
        st.text(alphabet=METADATA_ALPHABET, max_size=60).map(lambda t: f"Bearer {t}"),
        st.tuples(segment, segment, segment).map(lambda s: "Bearer " + ".".join(s)),
        _mutations(valid)
        .filter(lambda t: all(c in METADATA_ALPHABET for c in t))
        .map(lambda t: f"Bearer {t}"),
        st.sampled_from([f"Basic {valid}", "Bearer", "Bearer ", f"bearer {valid}", f"Bearer  {valid} x"]),
        st.sampled_from(list(pool) or [""]).map(lambda t: f"Bearer {t}"),
    )
    header = garbage.map(lambda value: (("authorization", value),))
    return st.one_of(header, st.just(()), st.just((("authorization", ""),)))


def _corrupted(raw: bytes) -> st.SearchStrategy[bytes]:
    """`raw` truncated, with a byte changed, or with garbage appended: wire formats nobody should trust."""
    if not raw:
        return st.binary(min_size=1, max_size=16)
    return st.one_of(
        st.integers(0, len(raw) - 1).map(lambda n: raw[:n]),
        st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 255)).map(
            lambda t: raw[: t[0]] + bytes([t[1]]) + raw[t[0] + 1 :]
        ),
        st.binary(min_size=1, max_size=16).map(lambda tail: raw + tail),
    )


def payloads(descriptor: Descriptor, pool: Sequence[str] = ()) -> st.SearchStrategy[bytes]:
    """Request bodies: mostly generated messages of `descriptor`'s type, sometimes corrupted bytes or
    bytes that are no message at all (invalid UTF-8 in strings, truncated varints, unknown fields)."""
    structured = messages(descriptor, pool).map(lambda message: message.SerializeToString())
    return st.one_of(
        structured, structured, structured, structured.flatmap(_corrupted), st.binary(max_size=128)
    )
