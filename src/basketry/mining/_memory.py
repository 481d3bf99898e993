"""How much more memory this process may take: the smallest of what the kernel, its cgroup and
its resource limits leave (Linux; elsewhere unknown)."""

from __future__ import annotations

from pathlib import Path

try:
    import resource
except ImportError:  # not on Unix: no rlimits to read
    resource = None  # type: ignore[assignment]

# a cgroup or rlimit at or above this is "no limit" (cgroup v1 writes 2**63 rounded to a page)
_UNLIMITED = 1 << 60


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not text.isdigit():  # "max" (cgroup v2: no limit)
        return None
    value = int(text)
    return value if value < _UNLIMITED else None


def _read_keyed(path: Path, keys: tuple[str, ...], scale: int = 1) -> dict[str, int]:
    """``key value`` lines (``/proc/meminfo``, ``memory.stat``): the values of ``keys``."""
    out: dict[str, int] = {}
    try:
        with path.open(encoding="ascii") as fh:
            for line in fh:
                parts = line.replace(":", " ").split()
                if len(parts) >= 2 and parts[0] in keys:
                    out[parts[0]] = int(parts[1]) * scale
    except (OSError, ValueError, UnicodeDecodeError):
        pass
    return out


def mem_available() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo``: what new allocations can get without swapping."""
    return _read_keyed(Path("/proc/meminfo"), ("MemAvailable",), 1024).get("MemAvailable")


def _cgroup_dirs(root: Path = Path("/sys/fs/cgroup")) -> list[tuple[int, Path]]:
    """The memory cgroup directories of this process, innermost first, with their version."""
    dirs: list[tuple[int, Path]] = []
    try:
        lines = Path("/proc/self/cgroup").read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError):
        return dirs
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            version, base = 2, root
        elif "memory" in parts[1].split(","):
            version, base = 1, root / "memory"
        else:
            continue
        # inside a cgroup namespace the mount's root is the process's own cgroup: try the
        # named path, then its ancestors (a parent's limit binds too), then the mount's root
        rel = Path(parts[2].lstrip("/"))
        for candidate in [rel, *rel.parents]:
            d = base / candidate
            if d.is_dir() and (version, d) not in dirs:
                dirs.append((version, d))
    return dirs


def cgroup_headroom() -> int | None:
    """The tightest cgroup memory limit minus what the cgroup uses now (page cache that can be
    dropped, ``inactive_file``, does not count as used), or None without a limit."""
    best: int | None = None
    for version, d in _cgroup_dirs():
        if version == 2:
            limit = _read_int(d / "memory.max")
            usage = _read_int(d / "memory.current")
            inactive = _read_keyed(d / "memory.stat", ("inactive_file",)).get("inactive_file", 0)
        else:
            limit = _read_int(d / "memory.limit_in_bytes")
            usage = _read_int(d / "memory.usage_in_bytes")
            inactive = _read_keyed(d / "memory.stat", ("total_inactive_file",)).get(
                "total_inactive_file", 0)
        if limit is None:
            continue
        room = max(0, limit - max(0, (usage or 0) - inactive))
        best = room if best is None else min(best, room)
    return best


def rlimit_headroom() -> int | None:
    """RLIMIT_AS minus the address space in use (VmSize), RLIMIT_DATA minus the data segment
    (VmData), whichever is smaller; None when neither is limited."""
    if resource is None:
        return None
    status = _read_keyed(Path("/proc/self/status"), ("VmSize", "VmData"), 1024)
    best: int | None = None
    for limit_id, used_key in ((resource.RLIMIT_AS, "VmSize"), (resource.RLIMIT_DATA, "VmData")):
        soft = resource.getrlimit(limit_id)[0]
        if soft == resource.RLIM_INFINITY or soft >= _UNLIMITED:
            continue
        room = max(0, soft - status.get(used_key, 0))
        best = room if best is None else min(best, room)
    return best


def memory_headroom() -> tuple[int, str] | None:
    """The most memory this process can still take, and which limit says so (None: unknown)."""
    found = [
        (value, name)
        for value, name in (
            (mem_available(), "MemAvailable"),
            (cgroup_headroom(), "the cgroup limit"),
            (rlimit_headroom(), "the process rlimit"),
        )
        if value is not None
    ]
    return min(found) if found else None
