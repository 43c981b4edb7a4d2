"""Small hand-written GitLab, Forgejo and Pagure payloads in each forge's real shape (the real
corpus is in ../shared/fixtures); GitHub's are in :mod:`tests.support.payloads`."""

from __future__ import annotations

from typing import Any

GITLAB_WEB = "https://gitlab.example.com"
FORGEJO_WEB = "https://forgejo.example.com"


# -- GitLab ------------------------------------------------------------------------------------


def gitlab_project(path: str, clone_url: str, project_id: int = 1, web: str = GITLAB_WEB) -> dict[str, Any]:
    return {
        "id": project_id,
        "name": path.rsplit("/", 1)[-1],
        "path_with_namespace": path,
        "web_url": f"{web}/{path}",
        "homepage": f"{web}/{path}",
        "git_http_url": clone_url,
        "git_ssh_url": f"git@{web.split('://')[1]}:{path}.git",
        "default_branch": "main",
        "visibility_level": 20,
    }


def gitlab_push(
    path: str, clone_url: str, sha: str, before: str, branch: str = "main", web: str = GITLAB_WEB
) -> dict[str, Any]:
    return {
        "object_kind": "push",
        "event_name": "push",
        "before": before,
        "after": sha,
        "ref": f"refs/heads/{branch}",
        "checkout_sha": sha,
        "user_username": "alice",
        "project_id": 1,
        "project": gitlab_project(path, clone_url, web=web),
        "commits": [{"id": sha, "message": "change", "added": [], "modified": ["VERSION"], "removed": []}],
        "total_commits_count": 1,
    }


def gitlab_merge_request(
    path: str,
    clone_url: str,
    sha: str,
    iid: int = 7,
    action: str = "open",
    oldrev: str = "",
    source_path: str = "",
    source_clone_url: str = "",
    source_branch: str = "feature",
) -> dict[str, Any]:
    target = gitlab_project(path, clone_url, project_id=1)
    source = gitlab_project(source_path or path, source_clone_url or clone_url, 2 if source_path else 1)
    attributes: dict[str, Any] = {
        "iid": iid,
        "title": "Add a feature",
        "action": action,
        "state": "opened",
        "source_branch": source_branch,
        "target_branch": "main",
        "source_project_id": source["id"],
        "target_project_id": target["id"],
        "last_commit": {"id": sha, "message": "change"},
        "source": source,
        "target": target,
        "url": f"{GITLAB_WEB}/{path}/-/merge_requests/{iid}",
        "draft": False,
        "work_in_progress": False,
    }
    if oldrev:
        attributes["oldrev"] = oldrev
    payload = {
        "object_kind": "merge_request",
        "event_type": "merge_request",
        "user": {"username": "alice", "name": "Alice"},
        "project": target,
        "object_attributes": attributes,
        "labels": [],
        "changes": {} if action != "update" or oldrev else {"title": {"previous": "Old", "current": "New"}},
    }
    return payload


# -- Forgejo / Gitea ---------------------------------------------------------------------------


def forgejo_repository(full_name: str, clone_url: str, repo_id: int = 1) -> dict[str, Any]:
    owner, name = full_name.split("/")
    return {
        "id": repo_id,
        "name": name,
        "full_name": full_name,
        "owner": {"id": 1, "login": owner, "username": owner},
        "html_url": f"{FORGEJO_WEB}/{full_name}",
        "clone_url": clone_url,
        "default_branch": "main",
        "private": False,
    }


def forgejo_push(
    full_name: str, clone_url: str, sha: str, before: str, branch: str = "main"
) -> dict[str, Any]:
    commit = {"id": sha, "message": "change", "added": [], "removed": [], "modified": ["VERSION"]}
    return {
        "ref": f"refs/heads/{branch}",
        "before": before,
        "after": sha,
        "commits": [commit],
        "total_commits": 1,
        "head_commit": commit,
        "repository": forgejo_repository(full_name, clone_url),
        "pusher": {"login": "alice"},
        "sender": {"login": "alice"},
    }


def forgejo_pull_request_object(full_name: str, clone_url: str, sha: str, number: int) -> dict[str, Any]:
    repo = forgejo_repository(full_name, clone_url)
    return {
        "id": 900 + number,
        "number": number,
        "title": "Add a feature",
        "user": {"login": "alice"},
        "draft": False,
        "labels": [],
        "merged": False,
        "html_url": f"{FORGEJO_WEB}/{full_name}/pulls/{number}",
        "head": {"ref": "feature", "sha": sha, "repo_id": 1, "repo": repo},
        "base": {"ref": "main", "sha": "", "repo_id": 1, "repo": repo},
    }


def forgejo_pull_request(
    full_name: str, clone_url: str, sha: str, number: int = 3, action: str = "opened"
) -> dict[str, Any]:
    return {
        "action": action,
        "number": number,
        "pull_request": forgejo_pull_request_object(full_name, clone_url, sha, number),
        "repository": forgejo_repository(full_name, clone_url),
        "sender": {"login": "alice"},
    }


def forgejo_pull_request_comment(full_name: str, clone_url: str, sha: str, number: int = 3) -> dict[str, Any]:
    """An ``issue_comment`` on a pull request, as Forgejo sends it (``is_pull``, the PR too)."""
    return {
        "action": "created",
        "issue": {
            "number": number,
            "title": "Add a feature",
            "user": {"login": "alice"},
            "pull_request": {"merged": False, "draft": False},
        },
        "pull_request": forgejo_pull_request_object(full_name, clone_url, sha, number),
        "comment": {"id": 42, "body": "/forgeflow test", "user": {"login": "bob"}},
        "is_pull": True,
        "repository": forgejo_repository(full_name, clone_url),
        "sender": {"login": "bob"},
    }


# -- Pagure ------------------------------------------------------------------------------------


def pagure_project(instance: str, fullname: str) -> dict[str, Any]:
    namespace, _, name = fullname.rpartition("/")
    return {
        "name": name,
        "namespace": namespace or None,
        "fullname": fullname,
        "url_path": fullname,
        "full_url": f"{instance}/{fullname}",
        "parent": None,
        "user": {"name": "owner"},
    }


def pagure_message(topic: str, msg: dict[str, Any], msg_id: str) -> dict[str, Any]:
    return {"topic": topic, "msg": msg, "msg_id": msg_id, "timestamp": 1700000000, "i": 1}


def pagure_push(instance: str, fullname: str, sha: str, before: str, msg_id: str) -> dict[str, Any]:
    msg = {
        "repo": pagure_project(instance, fullname),
        "branch": "main",
        "old_commit": before,
        "start_commit": sha,
        "end_commit": sha,
        "total_commits": 1,
        "forced": False,
        "agent": "alice",
        "pagure_instance": instance,
    }
    return pagure_message("git.receive", msg, msg_id)


def pagure_pull_request(instance: str, fullname: str, sha: str, number: int, msg_id: str) -> dict[str, Any]:
    project = pagure_project(instance, fullname)
    pr = {
        "id": number,
        "title": "Add a feature",
        "branch": "main",
        "branch_from": "feature",
        "commit_start": sha,
        "commit_stop": sha,
        "project": project,
        "repo_from": project,
        "remote_git": None,
        "status": "Open",
        "user": {"name": "alice"},
        "tags": [],
        "comments": [],
        "full_url": f"{instance}/{fullname}/pull-request/{number}",
    }
    return pagure_message(
        "pull-request.new", {"pullrequest": pr, "agent": "alice", "pagure_instance": instance}, msg_id
    )
