"""Audit the installed dependencies for known vulnerabilities, from what the package registry says.

The source is PyPI's own advisory data (the one `pip-audit` uses by default): the JSON of each
installed release lists the vulnerabilities known for it. Where a registry mirror serves only a
project's JSON and not its releases' (as the registry proxy of basketry's CI does), the project
JSON lists the vulnerabilities of the latest release only: an installed release that *is* the
latest is audited from it, an older one cannot be and is reported as not audited, never as clean.

    python scripts/audit_dependencies.py [--strict] [--json]

Exit status: 1 when an installed release has a known vulnerability; with ``--strict`` also when
some release could not be audited; 0 otherwise (a summary line says how many were audited).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata

INDEX = "https://pypi.org/pypi"
TIMEOUT = 10.0


@dataclass
class Finding:
    name: str
    version: str
    audited: bool
    how: str
    vulnerabilities: list[dict[str, object]] = field(default_factory=list)


def _get(url: str) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as answer:
            return json.load(answer)
    except (urllib.error.URLError, TimeoutError, OSError, ValueError):
        return None


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def audit(name: str, version: str) -> Finding:
    release = _get(f"{INDEX}/{name}/{version}/json")
    if release is not None:
        return Finding(name, version, True, "release", list(release.get("vulnerabilities") or []))
    project = _get(f"{INDEX}/{name}/json")
    if project is None:
        return Finding(name, version, False, "registry unreachable or package unknown")
    latest = str((project.get("info") or {}).get("version"))
    if latest != version:
        return Finding(name, version, False, f"installed {version}, latest {latest}: only the "
                       "latest release's advisories are served here")
    return Finding(name, version, True, "latest", list(project.get("vulnerabilities") or []))


def installed() -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        if name and _normalise(name) not in ("basketry", "pip", "setuptools", "wheel"):
            seen[_normalise(name)] = dist.version
    return sorted(seen.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strict", action="store_true", help="fail on releases not audited")
    parser.add_argument("--json", action="store_true", help="print every finding as JSON")
    args = parser.parse_args(argv)
    packages = installed()
    with ThreadPoolExecutor(max_workers=8) as pool:
        findings = list(pool.map(lambda p: audit(*p), packages))
    vulnerable = [f for f in findings if f.vulnerabilities]
    unaudited = [f for f in findings if not f.audited]
    if args.json:
        print(json.dumps([f.__dict__ for f in findings], indent=2))
    for finding in vulnerable:
        for vuln in finding.vulnerabilities:
            print(f"VULNERABLE {finding.name} {finding.version}: {vuln.get('id')} "
                  f"(fixed in {', '.join(map(str, vuln.get('fixed_in') or [])) or 'no release'})"
                  f" {vuln.get('link') or ''}")
    for finding in unaudited:
        print(f"not audited {finding.name} {finding.version}: {finding.how}")
    print(f"dependency audit: {len(findings)} installed, {len(findings) - len(unaudited)} "
          f"audited, {len(vulnerable)} with known vulnerabilities, {len(unaudited)} not audited")
    if vulnerable:
        return 1
    return 1 if args.strict and unaudited else 0


if __name__ == "__main__":
    sys.exit(main())
