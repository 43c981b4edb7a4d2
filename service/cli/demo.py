"""The demo repository ``make run`` creates: a local forge repository with a job file.

Its jobs show both outcomes: ``build`` and ``test`` pass, ``style`` fails on a trailing space
in ``hello.sh`` until someone fixes it and pushes again.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from service.forges.local import create_repository
from service.settings import Settings, local_webhook_secret

JOB_FILE = """\
# forgeflow demo: push to this repository and watch the jobs run.
version: 1
defaults:
  image: registry.fedoraproject.org/fedora:41
  timeout: 5m
jobs:
  build:
    on: [push, pull_request]
    steps:
      - name: show the commit
        run: git log -1 --oneline
      - name: build
        run: mkdir -p out && sh hello.sh > out/greeting.txt && cat out/greeting.txt
  test:
    on: [push, pull_request]
    needs: [build]
    env: {GREETING: hello}
    steps:
      - name: test
        run: sh hello.sh | grep -q "$GREETING" && echo "greeting ok for $FORGEFLOW_BRANCH"
  style:
    on: [push, pull_request]
    steps:
      - name: no trailing whitespace
        run: "! grep -n ' $' hello.sh"
"""

HELLO = 'echo "hello from forgeflow" \n'  # the trailing space makes "style" fail


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.name=forgeflow demo", "-c", "user.email=demo@forgeflow.invalid", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def setup_demo(settings: Settings) -> tuple[Path, Path]:
    """Create the demo repository and a checkout of it (once); return (bare repo, checkout)."""
    secret_file = settings.data_dir / "local-webhook-secret"
    local_webhook_secret(settings)
    url = f"{settings.public_url}/api/webhooks/local"
    bare = create_repository(settings.repos_dir, "demo", "hello", url, secret_file)
    checkout = settings.data_dir / "demo-checkout"
    if not (checkout / ".git").exists():
        hook = bare / "hooks" / "post-receive"
        hook_text = hook.read_text(encoding="utf-8")
        hook.unlink()  # the first push happens before the service listens
        try:
            checkout.mkdir(parents=True, exist_ok=True)
            _git("init", "--quiet", "--initial-branch=main", cwd=checkout)
            (checkout / ".forgeflow.yaml").write_text(JOB_FILE, encoding="utf-8")
            (checkout / "hello.sh").write_text(HELLO, encoding="utf-8")
            _git("add", ".", cwd=checkout)
            _git("commit", "--quiet", "-m", "forgeflow demo", cwd=checkout)
            _git("remote", "add", "origin", str(bare.resolve()), cwd=checkout)
            _git("push", "--quiet", "origin", "main", cwd=checkout)
        finally:
            hook.write_text(hook_text, encoding="utf-8")
            hook.chmod(0o755)
    return bare, checkout


def demo_command(checkout: Path) -> str:
    where = str(checkout)
    identity = "-c user.name=you -c user.email=you@example.invalid"
    return (
        f'git -C {where} {identity} commit --allow-empty -qm "try forgeflow"'
        f" && git -C {where} push -q origin main"
    )
