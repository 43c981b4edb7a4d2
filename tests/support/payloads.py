"""Small hand-written GitHub payloads for tests (the real corpus is in ../shared/fixtures)."""

from __future__ import annotations

from typing import Any


def repository(full_name: str, clone_url: str) -> dict[str, Any]:
    owner, name = full_name.split("/")
    return {
        "id": 1,
        "name": name,
        "full_name": full_name,
        "owner": {"login": owner, "id": 1},
        "private": False,
        "html_url": f"https://github.com/{full_name}",
        "clone_url": clone_url,
        "default_branch": "main",
    }


def push(
    full_name: str, clone_url: str, sha: str, ref: str = "refs/heads/main", before: str = ""
) -> dict[str, Any]:
    return {
        "ref": ref,
        "before": before or "1" * 40,
        "after": sha,
        "created": False,
        "deleted": False,
        "forced": False,
        "head_commit": {"id": sha, "message": "change", "added": [], "removed": [], "modified": []},
        "commits": [{"id": sha, "added": [], "removed": [], "modified": ["README"]}],
        "repository": repository(full_name, clone_url),
        "pusher": {"name": "alice"},
        "sender": {"login": "alice", "id": 2},
    }


def pull_request(
    full_name: str,
    clone_url: str,
    sha: str,
    number: int = 7,
    action: str = "opened",
    head_full_name: str | None = None,
    head_clone_url: str | None = None,
    target: str = "main",
    source: str = "feature",
    author: str = "alice",
) -> dict[str, Any]:
    head_name = head_full_name or full_name
    return {
        "action": action,
        "number": number,
        "pull_request": {
            "number": number,
            "title": "Add a feature; rm -rf / $(echo pwned)",
            "user": {"login": author},
            "draft": False,
            "labels": [],
            "html_url": f"https://github.com/{full_name}/pull/{number}",
            "head": {
                "ref": source,
                "sha": sha,
                "repo": repository(head_name, head_clone_url or clone_url),
            },
            "base": {"ref": target, "sha": "2" * 40, "repo": repository(full_name, clone_url)},
            "merged": False,
        },
        "repository": repository(full_name, clone_url),
        "sender": {"login": author, "id": 3},
    }


def issue_comment(
    full_name: str,
    clone_url: str,
    number: int,
    body: str,
    author: str,
    comment_id: int = 555,
    on_pull_request: bool = True,
) -> dict[str, Any]:
    issue: dict[str, Any] = {
        "number": number,
        "title": "a pull request",
        "user": {"login": "alice"},
        "labels": [],
        "html_url": f"https://github.com/{full_name}/pull/{number}",
    }
    if on_pull_request:
        issue["pull_request"] = {"url": f"https://api.github.com/repos/{full_name}/pulls/{number}"}
    return {
        "action": "created",
        "issue": issue,
        "comment": {
            "id": comment_id,
            "body": body,
            "user": {"login": author},
            "html_url": f"https://github.com/{full_name}/pull/{number}#issuecomment-{comment_id}",
        },
        "repository": repository(full_name, clone_url),
        "sender": {"login": author, "id": 4},
    }
