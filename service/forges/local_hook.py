"""The local forge's ``post-receive`` hook: one signed push delivery per updated ref.

git runs it in the bare repository with ``<old> <new> <ref>`` lines on stdin. A delivery that
fails is reported on stderr (the pusher sees it) and never fails the push itself.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from pathlib import Path

import requests

from handlers.local import HANDLER


def push_payload(namespace: str, name: str, git_dir: Path, old: str, new: str, ref: str) -> dict[str, object]:
    return {
        "repository": {
            "namespace": namespace,
            "name": name,
            "clone_url": str(git_dir.resolve()),
            "default_branch": "main",
        },
        "ref": ref,
        "before": old,
        "after": new,
        "pusher": os.environ.get("USER") or os.environ.get("LOGNAME") or "local",
    }


def deliver(url: str, secret: str, payload: dict[str, object], timeout: float = 10) -> requests.Response:
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", **HANDLER.sign(body, secret, "push", str(uuid.uuid4()))}
    return requests.post(url, data=body, headers=headers, timeout=timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="forgeflow-post-receive")
    parser.add_argument("--url", required=True)
    parser.add_argument("--secret-file", required=True, type=Path)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--name", required=True)
    args = parser.parse_args(argv)
    secret = args.secret_file.read_text(encoding="utf-8").strip()
    git_dir = Path(os.environ.get("GIT_DIR", ".")).resolve()
    for line in sys.stdin:
        parts = line.split()
        if len(parts) != 3:
            continue
        old, new, ref = parts
        payload = push_payload(args.namespace, args.name, git_dir, old, new, ref)
        try:
            response = deliver(args.url, secret, payload)
        except requests.RequestException as exc:
            print(f"forgeflow: could not deliver {ref}: {exc}", file=sys.stderr)
            continue
        if response.status_code >= 300:
            print(f"forgeflow: {ref}: HTTP {response.status_code} {response.text}", file=sys.stderr)
        else:
            print(f"forgeflow: {ref} {new[:7]} delivered ({response.status_code})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
