"""Write the hash-checked locks: every dependency of this project pinned `==` at the version
installed in this environment (the one `make test` ran the suite with), each with the sha256 of
every distribution file of that version that pip could pick (PyPI and the indexes pip is
configured with), so `pip install --require-hashes` refuses any other file or version.

    .venv/bin/python deploy/lock.py          # rewrite the locks (reads the indexes: network)
    .venv/bin/python deploy/lock.py --check  # offline: exit 1 when a pin differs from the venv

deploy/requirements.lock holds the runtime closure (the Dockerfile installs it);
deploy/requirements-dev.lock includes it and adds the dev extras' closure (`make install`);
deploy/requirements-pip.lock pins pip itself and the build backend (pyproject's exact
`[build-system] requires` and their dependencies): `make install` and the image install it first,
then the project with `--no-build-isolation`, so building it fetches nothing unhashed.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    canonicalize_version,
    parse_sdist_filename,
    parse_wheel_filename,
)

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "deploy" / "requirements.lock"
DEV_LOCK = ROOT / "deploy" / "requirements-dev.lock"
PIP_LOCK = ROOT / "deploy" / "requirements-pip.lock"
PYPI = "https://pypi.org/simple"
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
HEADERS = {
    LOCK: "# Runtime dependencies of maestro-dagster, pinned to the versions the test suite ran\n"
    "# with, each with the sha256 of every file pip could install for it.\n"
    "# Written by `python deploy/lock.py` (do not edit); the Dockerfile installs with it.\n",
    DEV_LOCK: "# The runtime lock plus the dev extras (tests, lint) and their dependencies.\n"
    "# Written by `python deploy/lock.py` (do not edit); `make install` installs with it.\n"
    "-r requirements.lock\n",
    PIP_LOCK: "# pip and the build backend (pyproject's [build-system] requires), hashed:\n"
    "# `make install` and the image install them first, then the project with\n"
    "# --no-build-isolation.\n"
    "# Written by `python deploy/lock.py` (do not edit).\n",
}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
_HREF = re.compile(r'href="([^"#]+)#sha256=([0-9a-f]{64})"')


def _applies(requirement: Requirement, extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    environment: dict[str, Any] = dict(default_environment())
    return any(
        requirement.marker.evaluate({**environment, "extra": extra}) for extra in extras or {""}
    )


def _closure(roots: list[Requirement]) -> dict[str, str]:
    """Canonical name -> installed version, for the requirements and what they require."""
    pending = [(requirement, set[str]()) for requirement in roots]
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


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _project() -> dict[str, Any]:
    return _pyproject()["project"]


def locked_versions() -> dict[str, str]:
    """The runtime closure: pyproject's dependencies (dev extras not followed)."""
    return _closure([Requirement(text) for text in _project()["dependencies"]])


def dev_versions() -> dict[str, str]:
    """The dev extras' closure, without what the runtime lock already pins."""
    project = _project()
    runtime = locked_versions()
    texts = project["dependencies"] + project["optional-dependencies"]["dev"]
    every = _closure([Requirement(text) for text in texts])
    return {name: version for name, version in every.items() if name not in runtime}


def build_versions() -> dict[str, str]:
    """The build backend's closure: `[build-system] requires`, each an exact pin the venv has.

    Exact, so pyproject is the one source of the versions; installed, because the project is
    built with --no-build-isolation from what the lock put in the venv.
    """
    roots = [Requirement(text) for text in _pyproject()["build-system"]["requires"]]
    versions = _closure(roots)
    for requirement in roots:
        pinned = [spec.version for spec in requirement.specifier if spec.operator == "=="]
        installed = versions[canonicalize_name(requirement.name)]
        if len(requirement.specifier) != 1 or not pinned:
            raise SystemExit(f"[build-system] requires {requirement}: pin it exactly (==)")
        if not _same(installed, pinned[0]):
            raise SystemExit(f"{requirement} is required to build, {installed} is installed")
    return versions


def pip_versions() -> dict[str, str]:
    """pip and the build backend: what the other installs are performed with."""
    return dict(sorted({"pip": distribution("pip").version, **build_versions()}.items()))


# Where pip looks: PyPI and the indexes / find-links folders of `pip config list`.
def _pip_sources() -> tuple[list[str], list[str]]:
    listing = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=True
    ).stdout
    indexes, links = [PYPI], []
    for line in listing.splitlines():
        key, _, value = line.partition("=")
        values = value.strip().strip("'\"").split()
        if key.endswith(("index-url", "extra-index-url")):
            indexes += values
        elif key.endswith("find-links"):
            links += values
    return list(dict.fromkeys(indexes)), list(dict.fromkeys(links))


def _version_of(filename: str, name: str) -> str | None:
    try:
        if filename.endswith(".whl"):
            found, version, _, _ = parse_wheel_filename(filename)
        else:
            found, version = parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return str(version) if found == name else None


def _same(version: str | None, wanted: str) -> bool:
    return version is not None and canonicalize_version(version) == canonicalize_version(wanted)


def _index_hashes(index: str, name: str, version: str) -> set[str]:
    url = f"{index.rstrip('/')}/{name}/"
    if url.startswith("file:"):
        page = Path(unquote(urlparse(url).path)) / "index.html"
        if not page.exists():
            return set()
        return {
            digest
            for href, digest in _HREF.findall(page.read_text(encoding="utf-8"))
            if _same(_version_of(unquote(href.rsplit("/", 1)[-1]), name), version)
        }
    request = urllib.request.Request(url, headers={"Accept": SIMPLE_JSON})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            files = json.load(response)["files"]
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return set()
        raise
    return {
        entry["hashes"]["sha256"]
        for entry in files
        if "sha256" in entry["hashes"] and _same(_version_of(entry["filename"], name), version)
    }


def _link_hashes(folder: str, name: str, version: str) -> set[str]:
    path = Path(unquote(urlparse(folder).path)) if folder.startswith("file:") else Path(folder)
    if not path.is_dir():
        return set()
    return {
        hashlib.sha256(file.read_bytes()).hexdigest()
        for file in path.iterdir()
        if _same(_version_of(file.name, name), version)
    }


def hashes(name: str, version: str, sources: tuple[list[str], list[str]]) -> list[str]:
    """Every sha256 pip may meet for name==version; refuses a pin no source has a file for."""
    indexes, links = sources
    found: set[str] = set()
    for index in indexes:
        found |= _index_hashes(index, name, version)
    for folder in links:
        found |= _link_hashes(folder, name, version)
    if not found:
        raise SystemExit(f"no distribution file of {name}=={version} on {indexes + links}")
    return sorted(found)


def lock_text(path: Path, pins: dict[str, str], sources: tuple[list[str], list[str]]) -> str:
    with ThreadPoolExecutor(max_workers=16) as pool:
        digests = pool.map(lambda item: hashes(item[0], item[1], sources), pins.items())
        blocks = [
            f"{name}=={version} \\\n" + " \\\n".join(f"    --hash=sha256:{d}" for d in found)
            for (name, version), found in zip(pins.items(), digests, strict=True)
        ]
    return HEADERS[path] + "".join(block + "\n" for block in blocks)


def read_lock(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, sha256 hashes) of a lock file (continuation lines joined)."""
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    pins: dict[str, tuple[str, list[str]]] = {}
    for line in text.splitlines():
        match = _PIN.match(line)
        if match:
            pins[canonicalize_name(match[1])] = (
                match[2],
                re.findall(r"--hash=sha256:([0-9a-f]{64})", line),
            )
    return pins


def expected() -> dict[Path, dict[str, str]]:
    return {LOCK: locked_versions(), DEV_LOCK: dev_versions(), PIP_LOCK: pip_versions()}


def check(locks: dict[Path, dict[str, str]] | None = None) -> list[str]:
    """Offline: each lock pins exactly the venv's versions, every pin with a sha256."""
    problems = []
    for path, pins in (expected() if locks is None else locks).items():
        if not path.exists():
            problems.append(f"{path} is missing")
            continue
        current = read_lock(path)
        if {name: version for name, (version, _) in current.items()} != pins:
            problems.append(f"{path}: pins differ from the installed versions")
        problems += [f"{path}: {name} has no hash" for name, (_, h) in current.items() if not h]
    return problems


def main(argv: list[str]) -> int:
    if "--check" in argv:
        problems = check()
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("run python deploy/lock.py", file=sys.stderr)
        return 1 if problems else 0
    sources = _pip_sources()
    for path, pins in expected().items():
        path.write_text(lock_text(path, pins, sources), encoding="utf-8")
        print(f"wrote {path} ({len(pins)} packages)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
