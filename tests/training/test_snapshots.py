"""The data store of training snapshots: exact round trips, the same bytes for the same baskets,
content addressing, atomic writes, and every way a snapshot can be missing or changed, on a
local folder and on an fsspec store (memory://). Real files, real Parquet; no mocks."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest

from basketry.data import Baskets, fingerprint, read_baskets, sample_path
from basketry.training.snapshots import (
    SnapshotError,
    load_snapshot,
    read_baskets_file,
    store_url,
    write_snapshot,
)

FIELDS = ("indptr", "indices", "items", "labels", "timestamps", "basket_ids", "customers")


def _path(url: str) -> Path:
    return Path(unquote(urlsplit(url).path))


def _same(a: Baskets, b: Baskets) -> None:
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            if x.dtype.kind == "M":  # NaT is not equal to itself: compare the int64 values
                x, y = x.view(np.int64), y.view(np.int64)
            assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert a.source == b.source and a.report == b.report


@pytest.fixture(scope="module")
def sample() -> Baskets:
    return read_baskets(sample_path())


def test_a_snapshot_gives_back_the_baskets_exactly(tmp_path, sample):
    snapshot = write_snapshot(sample, tmp_path)
    assert snapshot.fingerprint == fingerprint(sample)
    assert snapshot.n_baskets == sample.n_baskets and snapshot.n_items == sample.n_items
    path = _path(snapshot.url)
    assert path.parent.name == snapshot.fingerprint.split(":")[1]
    assert path.name == snapshot.digest.split(":")[1] + ".parquet"
    assert path.stat().st_size == snapshot.bytes
    _same(load_snapshot(snapshot), sample)
    # labels, timestamps (a NaT among them), customers and ids are all optional
    small = Baskets.from_lists([["b", "a"], [], ["c"]], items=["c", "b", "a", "unused"])
    _same(load_snapshot(write_snapshot(small, tmp_path)), small)
    with_missing = Baskets(indptr=small.indptr, indices=small.indices, items=small.items,
                           labels=np.array(["C", None, "A", None], dtype=object),
                           timestamps=np.array(["2026-01-01T10:00", "NaT", "2026-01-02"],
                                               dtype="datetime64[ns]"),
                           customers=np.array(["x", None, "y"], dtype=object),
                           source="hand made", report={"dropped": {"rows": 3}})
    _same(load_snapshot(write_snapshot(with_missing, tmp_path)), with_missing)
    # numpy values in the reader's report read back as the manifest writes them: numbers
    numbers = Baskets(indptr=small.indptr, indices=small.indices, items=small.items,
                      report={"rows": np.int64(7), "share": np.float64(0.5)})
    assert load_snapshot(write_snapshot(numbers, tmp_path)).report == {"rows": 7, "share": 0.5}


def test_the_same_baskets_give_the_same_file_once(tmp_path, sample):
    first = write_snapshot(sample, tmp_path / "a")
    path = _path(first.url)
    written = path.stat().st_mtime_ns
    assert write_snapshot(sample, tmp_path / "a") == first  # found, not written again
    assert path.stat().st_mtime_ns == written
    other = write_snapshot(sample, tmp_path / "b")  # another store: byte for byte the same
    assert other.digest == first.digest and _path(other.url).read_bytes() == path.read_bytes()
    assert sorted(p.name for p in (tmp_path / "a").rglob("*")) == sorted(
        [path.parent.name, path.name])


def test_same_fingerprint_other_order_is_another_file_beside_it(tmp_path, sample):
    reversed_ = sample.subset(np.arange(sample.n_baskets)[::-1])
    assert fingerprint(reversed_) == fingerprint(sample)  # the same content as sets of items
    a, b = write_snapshot(sample, tmp_path), write_snapshot(reversed_, tmp_path)
    assert a.digest != b.digest and _path(a.url).parent == _path(b.url).parent
    _same(load_snapshot(b), reversed_)


def test_a_damaged_file_under_the_name_is_replaced(tmp_path, sample):
    snapshot = write_snapshot(sample, tmp_path)
    path = _path(snapshot.url)
    path.write_bytes(path.read_bytes()[:1000])  # cut short, as by a crash of another writer
    assert write_snapshot(sample, tmp_path) == snapshot
    assert path.stat().st_size == snapshot.bytes
    _same(load_snapshot(snapshot), sample)


def test_missing_changed_or_foreign_snapshots_are_one_line(tmp_path, sample):
    snapshot = write_snapshot(sample, tmp_path)
    path = _path(snapshot.url)
    data = bytearray(path.read_bytes())
    data[100] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(SnapshotError, match="has changed since it was recorded"):
        load_snapshot(snapshot)
    path.unlink()
    with pytest.raises(SnapshotError, match="is missing"):
        load_snapshot(snapshot)
    foreign = tmp_path / "other.parquet"
    foreign.write_bytes(b"PAR1 not really")
    with pytest.raises(SnapshotError, match="not a readable basketry snapshot"):
        read_baskets_file(foreign)


def test_a_store_that_cannot_be_written_is_one_line_and_leaves_nothing(tmp_path, sample):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(SnapshotError, match="cannot be written to the data store"):
        write_snapshot(sample, blocked)
    with pytest.raises(SnapshotError, match="cannot be used"):
        write_snapshot(sample, "nosuchprotocol://bucket/x")


def test_the_default_store_is_under_basketry_home_unless_set(tmp_path, monkeypatch):
    monkeypatch.setenv("BASKETRY_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BASKETRY_DATA_STORE", raising=False)
    assert store_url() == str(tmp_path / "home" / "data")
    monkeypatch.setenv("BASKETRY_DATA_STORE", "s3://bucket/snapshots")
    assert store_url() == "s3://bucket/snapshots"
    assert store_url(tmp_path / "given") == str(tmp_path / "given")


def test_an_fsspec_store_writes_checks_and_finds(sample):
    fsspec = pytest.importorskip("fsspec")
    root = f"memory://basketry-test-{uuid.uuid4().hex}"
    fs = fsspec.filesystem("memory")
    snapshot = write_snapshot(sample, root)
    assert snapshot.url.startswith(root + "/") and snapshot.url.endswith(".parquet")
    files = fs.find(root)
    assert len(files) == 1 and fs.size(files[0]) == snapshot.bytes  # no temporary key left
    assert write_snapshot(sample, root) == snapshot
    _same(load_snapshot(snapshot), sample)
    with fs.open(files[0], "rb") as f:
        data = bytearray(f.read())
    data[-100] ^= 1
    fs.pipe_file(files[0], bytes(data))
    with pytest.raises(SnapshotError, match="has changed"):
        load_snapshot(snapshot)
    assert write_snapshot(sample, root) == snapshot  # the damaged object is written again
    _same(load_snapshot(snapshot), sample)
    fs.rm(files[0])
    with pytest.raises(SnapshotError, match="is missing"):
        load_snapshot(snapshot)
