"""``forgeflow init``: a commented starter job file for the project in a folder.

The project type is read from the files it has (``pyproject.toml`` or ``requirements.txt``:
Python; ``package.json``: Node; ``go.mod``: Go; ``Cargo.toml``: Rust; a ``Containerfile`` or
``Dockerfile``: a container image, added as a job of its own next to a language's jobs).
The file it writes validates as it is, says what each key does, and starts with the line that
points editors (yaml-language-server) at the JSON Schema, which it writes beside it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from service.cli.schema import schema_text

SCHEMA_PATH = ".forgeflow/schema.json"
HEADER = f"""\
# yaml-language-server: $schema={SCHEMA_PATH}
# forgeflow job file. Check it with `forgeflow validate`; see what an event would run with
# `forgeflow render --explain --push main`; run it here with `forgeflow exec --push main`.
version: 1
"""
TRIGGERS = """\
    on: [push, pull_request]          # also: tag, comment, release, manual, schedule, merge_group
"""


def _python(root: Path) -> str:
    install = "pip install -e ." if (root / "pyproject.toml").exists() or (root / "setup.py").exists() else ""
    if not install and (root / "requirements.txt").exists():
        install = "pip install -r requirements.txt"
    install = f"{install or 'pip install .'} pytest"
    hashed = next((f for f in ("pyproject.toml", "requirements.txt", "setup.py") if (root / f).exists()), "")
    key = (
        f"pip-${{{{ matrix.python }}}}-${{{{ hashFiles('{hashed}') }}}}"
        if hashed
        else "pip-${{ matrix.python }}"
    )
    return f"""\
defaults:
  image: docker.io/library/python:3.12  # the container every job runs in, unless it sets image:
  timeout: 20m                          # 90 (seconds), 30m, 1h30m
jobs:
  lint:
{TRIGGERS}    steps:                            # each step is a script run with `sh -e`
      - pip install ruff
      - ruff check .
  test:
{TRIGGERS}    matrix:                           # one job (and one commit status) per value
      python: ["3.11", "3.12", "3.13"]  # versions in quotes: 3.10 unquoted is the number 3.1
    image: "docker.io/library/python:${{{{ matrix.python }}}}"
    env: {{PIP_CACHE_DIR: .cache/pip}}
    cache:                            # pip's downloads, kept between runs of a branch
      key: "{key}"
      paths: [.cache/pip]
    steps:
      - name: install
        run: {install}
      - name: test
        run: pytest
"""


def _node(root: Path) -> str:
    if (root / "pnpm-lock.yaml").exists():
        install = "corepack enable && pnpm install --frozen-lockfile"
        run = "pnpm"
    elif (root / "yarn.lock").exists():
        install, run = "corepack enable && yarn install --frozen-lockfile", "yarn"
    else:
        install = "npm ci" if (root / "package-lock.json").exists() else "npm install"
        run = "npm run"
    return f"""\
defaults:
  timeout: 20m                          # 90 (seconds), 30m, 1h30m
jobs:
  test:
{TRIGGERS}    matrix:                           # one job (and one commit status) per value
      node: ["20", "22"]                # in quotes: they are names, not numbers
    image: "docker.io/library/node:${{{{ matrix.node }}}}"
    steps:                            # each step is a script run with `sh -e`
      - name: install
        run: {install}
      - name: lint
        run: {run} lint --if-present
      - name: test
        run: {run} test
"""


def _go(root: Path) -> str:
    return f"""\
defaults:
  image: docker.io/library/golang:1.23  # the container every job runs in, unless it sets image:
  timeout: 20m                          # 90 (seconds), 30m, 1h30m
jobs:
  test:
{TRIGGERS}    steps:                            # each step is a script run with `sh -e`
      - go vet ./...
      - go test ./...
  build:
{TRIGGERS}    needs: [test]                     # runs once test succeeded
    steps:
      - go build -o dist/ ./...
    artifacts: [dist]                 # kept after the job, linked on the run page
"""


def _rust(root: Path) -> str:
    return f"""\
defaults:
  image: docker.io/library/rust:1       # the container every job runs in, unless it sets image:
  timeout: 30m                          # 90 (seconds), 30m, 1h30m
jobs:
  lint:
{TRIGGERS}    steps:                            # each step is a script run with `sh -e`
      - cargo fmt --check
      - cargo clippy --all-targets -- -D warnings
  test:
{TRIGGERS}    steps:
      - cargo test
"""


def _container(root: Path) -> str:
    file = "Containerfile" if (root / "Containerfile").exists() else "Dockerfile"
    return f"""\
  image:
    on: [push, tag]
    # Builds without a daemon or privileges (buildah, chroot isolation). To push, add
    # `secrets: [registry-login]` (a Kubernetes Secret with REGISTRY_USER and REGISTRY_PASSWORD)
    # and a step: buildah push --creds "$REGISTRY_USER:$REGISTRY_PASSWORD" app:$FORGEFLOW_SHA docker://...
    image: quay.io/buildah/stable:latest
    timeout: 30m
    steps:
      - name: build
        run: buildah --storage-driver vfs build --isolation chroot -f {file} -t app:$FORGEFLOW_SHA .
"""


# (name, the files that say a project is of this type, the job file's body)
KINDS: dict[str, tuple[tuple[str, ...], Callable[[Path], str]]] = {
    "python": (("pyproject.toml", "setup.py", "setup.cfg", "requirements.txt"), _python),
    "node": (("package.json",), _node),
    "go": (("go.mod",), _go),
    "rust": (("Cargo.toml",), _rust),
}
CONTAINER_FILES = ("Containerfile", "Dockerfile")
GENERIC = """\
defaults:
  image: registry.fedoraproject.org/fedora:41  # the container every job runs in
  timeout: 20m                                 # 90 (seconds), 30m, 1h30m
jobs:
  build:
{triggers}    steps:                            # each step is a script run with `sh -e`
      - name: build
        run: make
      - name: test
        run: make check
"""


def detect(root: Path) -> list[str]:
    """The project types of ``root``: at most one language, then "container" when it has a
    Containerfile or Dockerfile."""
    found = [name for name, (files, _) in KINDS.items() if any((root / f).exists() for f in files)][:1]
    if any((root / f).exists() for f in CONTAINER_FILES):
        found.append("container")
    return found


def starter(root: Path, kinds: list[str]) -> str:
    """The job file for ``kinds`` (see :func:`detect`)."""
    languages = [k for k in kinds if k in KINDS]
    body = KINDS[languages[0]][1](root) if languages else ""
    if "container" in kinds:
        body = (body or "jobs:\n") + _container(root)
    return HEADER + (body or GENERIC.format(triggers=TRIGGERS))


def cmd_init(args: argparse.Namespace, settings: object) -> int:
    root = Path(args.path)
    target = root / ".forgeflow.yaml"
    if target.exists() and not args.force:
        print(f"{target} exists; forgeflow init --force replaces it", file=sys.stderr)
        return 1
    kinds = [args.type] if args.type else detect(root)
    text = starter(root, kinds)
    target.write_text(text, encoding="utf-8")
    schema = root / SCHEMA_PATH
    schema.parent.mkdir(parents=True, exist_ok=True)
    schema.write_text(schema_text(), encoding="utf-8")
    what = " and ".join(kinds) if kinds else "no known project type (a generic starter)"
    print(f"wrote {target} for {what}, and {schema} for editors")
    print("next: forgeflow validate, then forgeflow exec --push main (or --on-host without podman/docker)")
    return 0


def add_init_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=".", help="the project's folder (default: .)")
    parser.add_argument("--type", choices=[*KINDS, "container"], help="the project type (default: detected)")
    parser.add_argument("--force", action="store_true", help="replace an existing .forgeflow.yaml")
