"""Each installed dependency of nearcare: its size on disk and which of nearcare's own requirements
bring it (#19, "a lighter install"). Reads the environment it runs in (importlib.metadata).

Run:  .venv/bin/python scripts/dependency_sizes.py [--extras test]
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path


def _name(requirement: str) -> str:
    return re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _installed(name: str) -> metadata.Distribution | None:
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None


def _requires(dist: metadata.Distribution) -> list[str]:
    """Requirements without an extra marker (what a plain install pulls)."""
    return [_name(r) for r in dist.requires or [] if "extra==" not in r.replace(" ", "")]


def _size_bytes(dist: metadata.Distribution) -> int:
    total = 0
    for file in dist.files or []:
        path = Path(dist.locate_file(file))
        if path.is_file():
            total += path.stat().st_size
    return total


def main() -> None:
    extras = set(sys.argv[sys.argv.index("--extras") + 1].split(",")) if "--extras" in sys.argv else set()
    nearcare = metadata.distribution("nearcare")
    direct: dict[str, str] = {}  # requirement -> "base" or the extra's name
    for requirement in nearcare.requires or []:
        marker = re.search(r'extra\s*==\s*["\'](\w+)["\']', requirement)
        group = marker.group(1) if marker else "base"
        if group == "base" or group in extras:
            direct.setdefault(_name(requirement), group)
    brought_by: dict[str, set[str]] = {}
    for top in direct:
        stack, seen = [top], set()
        while stack:
            name = stack.pop()
            dist = _installed(name)
            if name in seen or dist is None:
                continue
            seen.add(name)
            brought_by.setdefault(name, set()).add(top)
            stack.extend(_requires(dist))
    rows = []
    for name, tops in brought_by.items():
        dist = _installed(name)
        assert dist is not None
        rows.append((_size_bytes(dist), name, dist.version, direct.get(name, ""), ", ".join(sorted(tops))))
    rows.sort(reverse=True)
    print("| MB | package | version | listed in | brought by |\n|---:|---|---|---|---|")
    for size, name, version, group, tops in rows:
        print(f"| {size / 1e6:.1f} | {name} | {version} | {group or '-'} | {tops} |")
    print(f"\n{len(rows)} packages, {sum(r[0] for r in rows) / 1e6:,.0f} MB installed")


if __name__ == "__main__":
    main()
