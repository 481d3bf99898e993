"""The data store: content-addressed snapshots of the baskets a model was trained on.

A snapshot is one Parquet file holding a :class:`~basketry.data.Baskets` exactly as training saw
it: one row per basket in the order given (``items``, a large list of int32 item ids;
``timestamp``, ``customer`` and ``basket_id`` when the baskets have them) and, in the file's
metadata (``basketry.snapshot``, JSON), the vocabulary in id order, the labels, the source and the
reader's report. Everything training depends on is there: the random split draws by position,
item ids order the mined rules, and the manifest records the labels, source and report, so a
model trained again from a snapshot is the same model byte for byte.

Its name is ``STORE/<fingerprint>/<sha256>.parquet``: the folder is the data fingerprint
(:func:`basketry.data.fingerprint`, the content as sets of items), the file the SHA-256 of its
bytes, because baskets with one fingerprint can still differ in what training depends on (their
order, labels, source). The bytes are deterministic for one pyarrow version: the same baskets
give the same file, which is written once and then found.

The store is a local folder (default ``$BASKETRY_HOME/data``, or ``BASKETRY_DATA_STORE``) or
any fsspec URL (``s3://bucket/prefix``, ``memory://`` in tests). Writing never shows a half
snapshot under its final name: locally a temporary sibling renamed into place; elsewhere the
bytes go to a temporary key, are checked (size and SHA-256), then moved to the final key and
its size checked again. A snapshot found already there is checked the same way before it is
trusted; one whose bytes differ from its name is replaced.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np

from basketry.data import Baskets, DataError, fingerprint
from basketry.model import reference

STORE_ENV = "BASKETRY_DATA_STORE"
FORMAT = "basketry-baskets"
FORMAT_VERSION = 1
METADATA_KEY = b"basketry.snapshot"
_CHUNK = 1 << 20


class SnapshotError(DataError):
    """A snapshot that cannot be written, found or trusted (missing, changed, unreadable)."""


@dataclass(frozen=True)
class Snapshot:
    """Where a snapshot is and what it holds: ``url``, ``digest`` (``sha256:<hex>`` of the
    file's bytes), ``bytes``, the baskets' ``fingerprint`` and counts."""

    url: str
    digest: str
    bytes: int
    fingerprint: str
    n_baskets: int
    n_items: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> Snapshot:
        try:
            return cls(url=str(value["url"]), digest=str(value["digest"]),
                       bytes=int(value["bytes"]), fingerprint=str(value["fingerprint"]),
                       n_baskets=int(value["n_baskets"]), n_items=int(value["n_items"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise SnapshotError(f"a snapshot record lacks or garbles {exc}") from None


# ---- where ------------------------------------------------------------------------------------
def store_url(store: str | os.PathLike[str] | None = None) -> str:
    """The data store: ``store``, else ``BASKETRY_DATA_STORE``, else ``$BASKETRY_HOME/data``."""
    chosen = store if store is not None else os.environ.get(STORE_ENV, "").strip() or None
    if chosen is None:
        return str(reference.basketry_home() / "data")
    return os.fspath(chosen)


def _local(url: str) -> Path | None:
    """The local path of ``url`` (a plain path or ``file://``), else None (fsspec's)."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if "://" in url:
        return None
    return Path(url).expanduser()


def _join(store: str, *names: str) -> str:
    local = _local(store)
    if local is not None:
        return local.resolve().joinpath(*names).as_uri()
    return "/".join([store.rstrip("/"), *names])


def _filesystem(url: str) -> tuple[Any, str]:
    try:
        from fsspec.core import url_to_fs
    except ImportError:
        raise SnapshotError(f"the data store {url} needs fsspec: pip install "
                            "'basketry[mlflow]'") from None
    try:
        return url_to_fs(url)
    except (ImportError, ValueError) as exc:  # an unknown protocol or its missing package
        raise SnapshotError(f"the data store {url} cannot be used: {exc}") from None


# ---- the Parquet form -------------------------------------------------------------------------
def _table(baskets: Baskets, fp: str) -> Any:
    import pyarrow as pa

    indptr = np.ascontiguousarray(baskets.indptr, dtype=np.int64)
    indices = np.ascontiguousarray(baskets.indices, dtype=np.int32)
    columns: dict[str, Any] = {
        "items": pa.LargeListArray.from_arrays(pa.array(indptr), pa.array(indices))}
    if baskets.timestamps is not None:
        ts = np.asarray(baskets.timestamps).astype("datetime64[ns]", copy=False)
        columns["timestamp"] = pa.array(ts, type=pa.timestamp("ns"))
    if baskets.customers is not None:
        columns["customer"] = pa.array(_strings(baskets.customers), type=pa.string())
    if baskets.basket_ids is not None:
        columns["basket_id"] = pa.array(_strings(baskets.basket_ids), type=pa.string())
    labels = None if baskets.labels is None else _strings(baskets.labels)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "fingerprint": fp,
            "items": [str(item) for item in baskets.items], "labels": labels,
            "source": baskets.source, "report": baskets.report}
    table = pa.table(columns)
    text = json.dumps(meta, default=_json_default)
    return table.replace_schema_metadata({METADATA_KEY: text.encode()})


def _strings(values: np.ndarray) -> list[str | None]:
    return [None if v is None else str(v) for v in values]


def _json_default(value: Any) -> Any:
    # as the manifest writes the reader's report: numpy values as numbers, the rest as text
    if hasattr(value, "tolist") and callable(value.tolist):
        return value.tolist()
    return str(value)


def _write_parquet(baskets: Baskets, fp: str, path: Path) -> None:
    import pyarrow.parquet as pq

    # fixed options: the same baskets give the same bytes
    pq.write_table(_table(baskets, fp), path, compression="zstd", compression_level=3,
                   use_dictionary=["customer", "basket_id"], write_statistics=False)


def read_baskets_file(path: str | os.PathLike[str], what: str | None = None) -> Baskets:
    """The baskets of a snapshot file (``SnapshotError`` naming ``what`` when it is not one)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    what = what or os.fspath(path)
    try:
        table = pq.read_table(path)
        meta = json.loads((table.schema.metadata or {})[METADATA_KEY])
        if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
            raise ValueError("not a basketry snapshot of format version 1")
        lists = table.column("items").combine_chunks()
        if isinstance(lists, pa.ChunkedArray):
            lists = lists.chunk(0)
    except (OSError, KeyError, ValueError, TypeError, pa.ArrowException) as exc:
        raise SnapshotError(f"{what} is not a readable basketry snapshot: {exc}") from None
    offsets = lists.offsets.to_numpy().astype(np.int64)
    indices = lists.values.to_numpy().astype(np.int32)[offsets[0]:offsets[-1]]
    names = table.column_names

    def strings(name: str) -> np.ndarray | None:
        if name not in names:
            return None
        return np.array(table.column(name).to_pylist(), dtype=object)

    timestamps = None
    if "timestamp" in names:
        timestamps = table.column("timestamp").to_numpy().astype("datetime64[ns]")
    labels = meta.get("labels")
    return Baskets(
        indptr=offsets - offsets[0], indices=indices,
        items=np.array(meta["items"], dtype=object),
        labels=None if labels is None else np.array(labels, dtype=object),
        timestamps=timestamps, basket_ids=strings("basket_id"), customers=strings("customer"),
        source=meta.get("source", ""), report=meta.get("report") or {})


def _digest(path: Path) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return "sha256:" + h.hexdigest(), size


def _remote_digest(fs: Any, path: str) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with fs.open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return "sha256:" + h.hexdigest(), size


# ---- writing ----------------------------------------------------------------------------------
def write_snapshot(baskets: Baskets, store: str | os.PathLike[str] | None = None) -> Snapshot:
    """Snapshot ``baskets`` into the data store (skipped when the same snapshot is already
    there, its bytes checked); ``SnapshotError`` when the store cannot be written."""
    root = store_url(store)
    fp = fingerprint(baskets)
    local = _local(root)
    try:
        if local is not None:
            return _write_local(baskets, fp, local)
        return _write_remote(baskets, fp, root)
    except SnapshotError:
        raise
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise SnapshotError(f"the training data cannot be written to the data store {root}: "
                            f"{reason}") from None


def snapshot_url(store: str | os.PathLike[str] | None, fp: str, digest: str) -> str:
    """Where the snapshot of fingerprint ``fp`` and digest ``digest`` lies in a data store."""
    return _join(store_url(store), fp.split(":", 1)[1], f"{digest.split(':', 1)[1]}.parquet")


def _snapshot(url: str, digest: str, size: int, fp: str, baskets: Baskets) -> Snapshot:
    return Snapshot(url=url, digest=digest, bytes=size, fingerprint=fp,
                    n_baskets=baskets.n_baskets, n_items=baskets.n_items)


@contextlib.contextmanager
def _temporary(folder: Path) -> Iterator[Path]:
    tmp = folder / f".snapshot-{uuid.uuid4().hex}.parquet.tmp"
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def _write_local(baskets: Baskets, fp: str, root: Path) -> Snapshot:
    folder = root.expanduser().resolve() / fp.split(":", 1)[1]
    folder.mkdir(parents=True, exist_ok=True)
    with _temporary(folder) as tmp:
        _write_parquet(baskets, fp, tmp)
        digest, size = _digest(tmp)
        final = folder / f"{digest.split(':', 1)[1]}.parquet"
        if final.is_file() and _digest(final) == (digest, size):
            return _snapshot(final.as_uri(), digest, size, fp, baskets)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, final)  # also replaces a damaged file of that name
    return _snapshot(final.as_uri(), digest, size, fp, baskets)


def _write_remote(baskets: Baskets, fp: str, root: str) -> Snapshot:
    fs, _ = _filesystem(root)
    with tempfile.TemporaryDirectory(prefix="basketry-snapshot-") as tmpdir:
        tmp = Path(tmpdir) / "baskets.parquet"
        _write_parquet(baskets, fp, tmp)
        digest, size = _digest(tmp)
        url = snapshot_url(root, fp, digest)
        _, final = _filesystem(url)
        if fs.exists(final) and _remote_digest(fs, final) == (digest, size):
            return _snapshot(url, digest, size, fp, baskets)
        _, staged = _filesystem(_join(root, f".snapshot-{uuid.uuid4().hex}.tmp"))
        try:
            fs.put_file(str(tmp), staged)
            if _remote_digest(fs, staged) != (digest, size):
                raise SnapshotError(f"the data store {root} did not keep the snapshot's bytes "
                                    "(read back differently); nothing was recorded")
            fs.mv(staged, final)
        finally:
            with contextlib.suppress(OSError, FileNotFoundError):
                if fs.exists(staged):
                    fs.rm(staged)
        if fs.size(final) != size:
            raise SnapshotError(f"the data store {root} shows {url} with a size other than "
                                f"the {size} bytes written")
    return _snapshot(url, digest, size, fp, baskets)


# ---- reading back -----------------------------------------------------------------------------
def load_snapshot(snapshot: Snapshot, *, what: str = "the training data") -> Baskets:
    """The baskets of ``snapshot`` after checking its bytes and fingerprint (``SnapshotError``,
    one line, when it is missing or has changed since it was recorded)."""
    local = _local(snapshot.url)
    with tempfile.TemporaryDirectory(prefix="basketry-snapshot-") as tmpdir:
        if local is not None:
            path = local
            if not path.is_file():
                raise SnapshotError(f"{what} is missing: no snapshot at {snapshot.url} (the "
                                    "data store was moved or cleaned)")
        else:
            fs, remote = _filesystem(snapshot.url)
            path = Path(tmpdir) / "baskets.parquet"
            try:
                fs.get_file(remote, str(path))
            except (FileNotFoundError, OSError):
                raise SnapshotError(f"{what} is missing: no snapshot at {snapshot.url} (the "
                                    "data store was moved or cleaned)") from None
        digest, size = _digest(path)
        if (digest, size) != (snapshot.digest, snapshot.bytes):
            raise SnapshotError(f"{what} at {snapshot.url} has changed since it was recorded: "
                                f"{size} bytes with {digest}, recorded {snapshot.bytes} bytes "
                                f"with {snapshot.digest}")
        baskets = read_baskets_file(path, what=f"{what} at {snapshot.url}")
    if fingerprint(baskets) != snapshot.fingerprint:
        raise SnapshotError(f"{what} at {snapshot.url} does not hold the recorded data "
                            f"(fingerprint {fingerprint(baskets)}, recorded "
                            f"{snapshot.fingerprint})")
    return baskets
