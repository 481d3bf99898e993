"""Arrow columns as numpy integer codes: dictionary encoding of (chunked) columns with one
dictionary, whitespace trimming of a dictionary, zero-copy views of primitive arrays, and the
conversions between int64 numpy arrays and Arrow.
"""

from __future__ import annotations

import numpy as np

from basketry.data._lazy import LazyModule

pa = LazyModule("pyarrow")
pc = LazyModule("pyarrow.compute")


def _indices(array: pa.DictionaryArray) -> np.ndarray:
    idx = array.indices
    if idx.null_count == 0:
        return _numeric_view(idx).astype(np.int32, copy=False)
    return pc.fill_null(idx, -1).to_numpy(zero_copy_only=False).astype(np.int32, copy=False)


def _numeric_view(array: pa.Array) -> np.ndarray:
    """The values of a primitive Arrow array without nulls, as numpy (zero copy)."""
    dtype = np.dtype(array.type.to_pandas_dtype())
    return np.frombuffer(
        array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize
    )


def _plain_ints(column: pa.ChunkedArray) -> bool:
    """Signed (or up to 32-bit unsigned) integers without nulls."""
    t = column.type
    return (
        (pa.types.is_signed_integer(t) or t in (pa.uint8(), pa.uint16(), pa.uint32()))
        and column.null_count == 0
    )


def _int64(column: pa.ChunkedArray) -> np.ndarray:
    parts = [_numeric_view(c).astype(np.int64, copy=False) for c in column.chunks]
    if not parts:
        return np.zeros(0, dtype=np.int64)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _arrow_int64(values: np.ndarray) -> pa.Array:
    values = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), values.shape[0], [None, pa.py_buffer(values)])


def _same_buffers(a: pa.Array, b: pa.Array) -> bool:
    return len(a) == len(b) and all(
        (x is None and y is None) or (x is not None and y is not None and x.address == y.address)
        for x, y in zip(a.buffers(), b.buffers(), strict=True)
    )


def _encode(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Integer codes (int32, -1 for null) and the dictionary (as strings) of a column.

    Chunks are dictionary-encoded one by one (unless they already are); their dictionaries
    are merged with one hash pass over the concatenated chunk dictionaries (much cheaper than
    ``unify_dictionaries`` when chunks already share one dictionary or are many).
    """
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    if not chunks:
        chunks = [pa.array([], column.type)]
    chunks = [c if pa.types.is_dictionary(c.type) else pc.dictionary_encode(c) for c in chunks]
    # distinct dictionaries only (Parquet gives every batch of a row group the same one, and
    # row groups written from one table usually carry equal ones)
    distinct: list[pa.Array] = []
    which = []
    for c in chunks:
        d = c.dictionary
        for k, seen in enumerate(distinct):
            if _same_buffers(d, seen) or (len(d) == len(seen) and d.equals(seen)):
                which.append(k)
                break
        else:
            which.append(len(distinct))
            distinct.append(d)
    if len(distinct) == 1:
        dictionary = distinct[0]
        codes = np.concatenate([_indices(c) for c in chunks]) if len(chunks) > 1 else _indices(
            chunks[0]
        )
    else:
        merged = pc.dictionary_encode(pa.concat_arrays(distinct))
        remap = _indices(merged)
        dictionary = merged.dictionary
        starts = np.cumsum([0] + [len(d) for d in distinct])
        locals_ = [np.append(remap[starts[k] : starts[k + 1]], np.int32(-1))
                   for k in range(len(distinct))]
        codes = np.empty(sum(len(c) for c in chunks), dtype=np.int32)
        pos = 0
        for c, k in zip(chunks, which, strict=True):
            codes[pos : pos + len(c)] = locals_[k][_indices(c)]
            pos += len(c)
    if pa.types.is_floating(dictionary.type):
        # NaN is how pandas writes a missing number: a null id, never the string "nan"
        dictionary = pc.if_else(pc.is_nan(dictionary), pa.scalar(None, dictionary.type),
                                dictionary)
        valid = dictionary.drop_null()
        if len(valid) == 0 or (
            pc.all(pc.is_finite(valid)).as_py()
            and pc.all(pc.equal(pc.floor(valid), valid)).as_py()
        ):
            dictionary = pc.cast(dictionary, pa.int64())  # 17850.0 -> "17850"
    if not (pa.types.is_string(dictionary.type) or pa.types.is_large_string(dictionary.type)):
        dictionary = pc.cast(dictionary, pa.string())
    if dictionary.null_count:
        null_code = np.append(dictionary.is_null().to_numpy(zero_copy_only=False), True)
        codes = np.where(null_code[codes], -1, codes).astype(np.int32)
        # no code points at those entries now; a string keeps every mask over them boolean
        dictionary = pc.fill_null(dictionary, "")
    return codes, dictionary


def _trimmed(codes: np.ndarray, dictionary: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Codes and dictionary after stripping whitespace (merging values that become equal)."""
    trimmed = pc.utf8_trim_whitespace(dictionary)
    if not pc.any(pc.not_equal(trimmed, dictionary)).as_py():
        return codes, dictionary  # nothing to strip: no second hash pass
    encoded = pc.dictionary_encode(trimmed)
    remap = np.append(encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32), -1)
    return remap[codes], encoded.dictionary


def _lookup(table: np.ndarray, codes: np.ndarray, missing: object) -> np.ndarray:
    """``table[codes]`` with ``missing`` where a code is -1."""
    ext = np.append(table, np.array([missing], dtype=table.dtype))
    return ext[codes]
