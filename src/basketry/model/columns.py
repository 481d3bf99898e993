"""Arrow arrays from numpy arrays and Python strings, and numpy views of Arrow arrays, made
through the arrays' buffers.

Why not ``pa.array`` and ``to_numpy``: wherever pandas is installed, pyarrow imports it at its
first conversion (``pa.array`` checks every input for pandas objects, ``to_numpy`` goes through
the pandas converter), about 0.2 s of a fresh process that never uses pandas. Building from
buffers gives the same arrays (same values, no validity bitmap without nulls), so the same
Parquet bytes. The writer and the content checks use these; ``basketry mine`` imports no pandas.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

#: The fixed-width Arrow types viewed as numpy arrays, and their numpy dtypes.
_DTYPES: dict[pa.DataType, np.dtype] = {
    t: np.dtype(d) for t, d in (
        (pa.int8(), np.int8), (pa.int16(), np.int16), (pa.int32(), np.int32),
        (pa.int64(), np.int64), (pa.uint8(), np.uint8), (pa.uint16(), np.uint16),
        (pa.uint32(), np.uint32), (pa.uint64(), np.uint64), (pa.float32(), np.float32),
        (pa.float64(), np.float64),
    )
}
_INT32_MAX = np.iinfo(np.int32).max


def primitive_array(values: np.ndarray | Sequence[float], type: pa.DataType) -> pa.Array:
    """A fixed-width array of ``type`` (an integer or float type) holding ``values``, no nulls;
    the numpy data is shared when it already has the type's dtype and is contiguous."""
    data = np.ascontiguousarray(values, dtype=_DTYPES[type])
    if data.ndim != 1:
        raise ValueError(f"a column must be one-dimensional, got shape {data.shape}")
    return pa.Array.from_buffers(type, data.shape[0], [None, pa.py_buffer(data)], null_count=0)


def list_array(offsets: np.ndarray, values: np.ndarray, value_type: pa.DataType) -> pa.Array:
    """A ``list<value_type>`` array without nulls: list ``i`` is
    ``values[offsets[i]:offsets[i + 1]]`` (CSR form; offsets from 0, ascending)."""
    offsets32 = np.ascontiguousarray(offsets, dtype=np.int32)
    if offsets32.shape[0] != np.shape(offsets)[0] or (offsets32.size and (
            offsets32[0] != 0 or np.any(offsets32 != offsets))):
        raise ValueError("list offsets must start at 0 and fit in int32")
    child = primitive_array(values, value_type)
    if offsets32.size and offsets32[-1] > len(child):
        raise ValueError(f"list offsets end at {offsets32[-1]}, past {len(child)} values")
    n = max(offsets32.shape[0] - 1, 0)
    if not offsets32.size:  # no lists: Arrow still wants one offset
        offsets32 = np.zeros(1, dtype=np.int32)
    return pa.Array.from_buffers(pa.list_(value_type), n, [None, pa.py_buffer(offsets32)],
                                 null_count=0, children=[child])


def string_array(values: Sequence[str | None]) -> pa.Array:
    """A ``string`` array of ``values`` (``None``: null), as ``pa.array(values, pa.string())``
    gives it."""
    encoded = [b"" if v is None else v.encode("utf-8") for v in values]
    n = len(encoded)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=n), out=offsets[1:])
    if offsets[-1] > _INT32_MAX:  # beyond the 32-bit offsets of `string`: pyarrow chunks it
        return pa.array(values, pa.string())
    missing = np.fromiter((v is None for v in values), dtype=bool, count=n)
    n_null = int(missing.sum())
    validity = pa.py_buffer(np.packbits(~missing, bitorder="little")) if n_null else None
    return pa.Array.from_buffers(
        pa.string(), n,
        [validity, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(b"".join(encoded))],
        null_count=n_null)


def view(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The values of a fixed-width array without nulls as a read-only numpy array: a view of
    its buffer (a copy only to join the chunks of a chunked array). Other arrays, or arrays
    with nulls, go through ``to_numpy``."""
    if isinstance(array, pa.ChunkedArray):
        if array.num_chunks == 1:
            return view(array.chunk(0))
        if array.num_chunks == 0:
            return np.empty(0, dtype=_DTYPES.get(array.type, np.dtype(object)))
        return np.concatenate([view(chunk) for chunk in array.chunks])
    dtype = _DTYPES.get(array.type)
    if dtype is None or array.null_count:
        return array.to_numpy(zero_copy_only=False)
    data = array.buffers()[1]
    if data is None:  # an empty array may have no data buffer
        return np.empty(0, dtype=dtype)
    out = np.frombuffer(data, dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize)
    out.flags.writeable = False  # Arrow's memory, maybe shared with the caller's arrays
    return out


def list_parts(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (int64, from 0) and values (a view) of a list array without nulls."""
    offsets = view(array.offsets).astype(np.int64)
    values = view(array.values)
    if not offsets.size:
        return np.zeros(1, dtype=np.int64), values[:0]
    return offsets - offsets[0], values[offsets[0] : offsets[-1]]
