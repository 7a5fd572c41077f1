"""Write deploy/requirements.lock: every runtime dependency of this project, pinned `==` at the
version installed in this environment (the one `make test` ran the suite with).

    .venv/bin/python deploy/lock.py        # rewrite the lock
    .venv/bin/python deploy/lock.py --check  # exit 1 when the lock differs from what it would write

The Dockerfile installs the project with this lock as its constraints, so the image runs the
versions the tests ran. Dev extras (pytest, ruff, ...) are not followed.
"""

from __future__ import annotations

import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "deploy" / "requirements.lock"
HEADER = (
    "# Runtime dependencies of maestro-dagster, pinned to the versions the test suite ran with.\n"
    "# Written by `python deploy/lock.py` (do not edit); the Dockerfile installs with it.\n"
)


def _applies(requirement: Requirement, extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    environment = dict(default_environment())
    return any(
        requirement.marker.evaluate({**environment, "extra": extra}) for extra in extras or {""}
    )


def locked_versions() -> dict[str, str]:
    """Canonical name -> installed version, for the closure of pyproject's dependencies."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pending = [(Requirement(text), set[str]()) for text in project["dependencies"]]
    seen: dict[str, str] = {}
    followed: set[tuple[str, frozenset[str]]] = set()
    while pending:
        requirement, parent_extras = pending.pop()
        if not _applies(requirement, parent_extras):
            continue
        name = canonicalize_name(requirement.name)
        key = (name, frozenset(requirement.extras))
        if key in followed:
            continue
        followed.add(key)
        try:
            dist = distribution(requirement.name)
        except PackageNotFoundError:
            raise SystemExit(f"{requirement.name} is required but not installed") from None
        seen[name] = dist.version
        for text in dist.requires or ():
            pending.append((Requirement(text), set(requirement.extras)))
    return dict(sorted(seen.items()))


def lock_text() -> str:
    return HEADER + "".join(f"{name}=={version}\n" for name, version in locked_versions().items())


def main(argv: list[str]) -> int:
    text = lock_text()
    if "--check" in argv:
        current = LOCK.read_text(encoding="utf-8") if LOCK.exists() else ""
        if current != text:
            print(f"{LOCK} is out of date: run python deploy/lock.py", file=sys.stderr)
            return 1
        return 0
    LOCK.write_text(text, encoding="utf-8")
    print(f"wrote {LOCK} ({text.count('==')} packages)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
