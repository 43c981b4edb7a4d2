"""Events made up from a git checkout, for ``render``, ``explain`` and ``exec``.

``--push BRANCH``, ``--tag NAME``, ``--pr NUMBER [--from-fork] [--author LOGIN]``,
``--comment "/forgeflow test lint"`` and ``--manual JOB`` describe what a forge would send,
without a webhook file: the repository comes from the checkout's ``origin`` remote (or its
folder), commits from its branches and tags, and the files a push or pull request changed from
its history (compared by :mod:`service.cli.checkout` as the worker compares them through the
forge). What the checkout cannot know is assumed and said in :attr:`Synthetic.notes`.
"""

from __future__ import annotations

import getpass
import re
from dataclasses import dataclass, field
from pathlib import Path

from service.cli.checkout import commit_of, first_commit, git
from service.events import Comment, Event, EventKind, PullRequest, Repository
from service.jobs.suggest import did_you_mean

ZERO = "0" * 40
# host names that say which forge a remote is on (anything else: the embedded "local" forge)
FORGE_HOSTS = (
    ("github", "github"),
    ("gitlab", "gitlab"),
    ("codeberg", "forgejo"),
    ("forgejo", "forgejo"),
    ("gitea", "forgejo"),
    ("pagure", "pagure"),
    ("src.fedoraproject.org", "pagure"),
)
_REMOTE = re.compile(r"^(?:[a-z+]+://)?(?:[^@/]+@)?(?P<host>[^/:]+)[:/](?P<path>.+?)(?:\.git)?/?$")


class SyntheticError(Exception):
    pass


@dataclass
class Synthetic:
    """The made-up event and what had to be assumed to make it."""

    event: Event
    notes: list[str] = field(default_factory=list)
    commenter: str = ""  # --comment: who wrote it (assumed a maintainer)


def _out(root: Path, *args: str) -> str:
    done = git(root, *args)
    return done.stdout.strip() if done.returncode == 0 else ""


def guess_forge(url: str) -> str:
    found = _REMOTE.match(url) if url else None
    host = found.group("host") if found else ""
    return next((forge for word, forge in FORGE_HOSTS if word in host), "local")


def repository_of(root: Path) -> Repository:
    """The repository the checkout is a clone of (its ``origin``), else the checkout itself."""
    url = _out(root, "config", "--get", "remote.origin.url")
    found = _REMOTE.match(url) if url and not url.startswith(("/", ".", "file:")) else None
    if found:
        parts = found.group("path").strip("/").split("/")
        namespace, name = "/".join(parts[:-1]), parts[-1]
        html = f"https://{found.group('host')}/{found.group('path')}"
    else:
        namespace, name, html = "local", root.resolve().name, ""
    return Repository(namespace, name, url or str(root.resolve()), html, default_branch(root))


def default_branch(root: Path) -> str:
    head = _out(root, "symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD")
    if head.startswith("origin/"):
        return head[len("origin/") :]
    for candidate in ("main", "master"):
        if commit_of(root, candidate) or commit_of(root, f"origin/{candidate}"):
            return candidate
    return current_branch(root)


def current_branch(root: Path) -> str:
    return _out(root, "symbolic-ref", "--quiet", "--short", "HEAD")


def branches(root: Path) -> list[str]:
    names = _out(root, "for-each-ref", "--format=%(refname:short)", "refs/heads", "refs/remotes/origin")
    return sorted({n.removeprefix("origin/") for n in names.splitlines() if n and n != "origin/HEAD"})


def local_user(root: Path) -> str:
    """Who "you" are, as a forge login would read: the part of git's e-mail before the @."""
    email = _out(root, "config", "--get", "user.email")
    login = email.split("@", 1)[0] if email else ""
    if not login:
        try:
            login = getpass.getuser()
        except (KeyError, OSError):
            login = "you"
    return login or "you"


def _head(root: Path) -> str:
    sha = commit_of(root, "HEAD")
    if not sha:
        raise SyntheticError(f"{root} is not a git checkout with commits")
    return sha


def push(root: Path, forge: str, branch: str, author: str = "") -> Synthetic:
    """A push of ``branch``: its commits not yet on ``origin`` (else its last commit)."""
    sha = first_commit(root, branch, f"origin/{branch}")
    if not sha:
        known = branches(root)
        raise SyntheticError(
            f"the checkout has no branch {branch!r}{did_you_mean(branch, known)} "
            f"(branches: {', '.join(known)})"
        )
    notes = []
    remote = commit_of(root, f"origin/{branch}")
    parent = commit_of(root, f"{sha}^")
    ahead = remote and remote != sha and git(root, "merge-base", "--is-ancestor", remote, sha).returncode == 0
    before = remote if ahead else parent
    if ahead:
        notes.append(f"note: pushing {branch}'s commits not yet on origin ({remote[:7]}..{sha[:7]})")
    repository = repository_of(root)
    event = Event(
        forge=forge or guess_forge(repository.clone_url),
        kind=EventKind.PUSH,
        repository=repository,
        sha=sha,
        action="push",
        ref=f"refs/heads/{branch}",
        branch=branch,
        before=before or ZERO,
        created=not before,
        sender=author or local_user(root),
    )
    return Synthetic(event, notes)


def tag(root: Path, forge: str, name: str, author: str = "") -> Synthetic:
    """A pushed tag ``name``: its commit, or HEAD when the checkout has no such tag yet."""
    notes = []
    sha = commit_of(root, f"refs/tags/{name}")
    if not sha:
        sha = _head(root)
        notes.append(f"note: the checkout has no tag {name!r}; as if it were made at HEAD ({sha[:7]})")
    repository = repository_of(root)
    event = Event(
        forge=forge or guess_forge(repository.clone_url),
        kind=EventKind.TAG,
        repository=repository,
        sha=sha,
        action="push",
        ref=f"refs/tags/{name}",
        tag=name,
        sender=author or local_user(root),
    )
    return Synthetic(event, notes)


def pull_request(
    root: Path, forge: str, number: int, *, from_fork: bool = False, author: str = "", action: str = "opened"
) -> Synthetic:
    """Pull request ``number`` from the checked-out branch into the default branch."""
    repository = repository_of(root)
    head = _head(root)
    source = current_branch(root) or "HEAD"
    target = repository.default_branch
    base = first_commit(root, f"origin/{target}", target)
    notes = []
    if not base:
        notes.append(f"note: the checkout has no {target!r}: the changed files are unknown")
    elif source == target:
        notes.append(f"note: HEAD is on {target} itself, so the pull request changes no files")
    login = author or local_user(root)
    fork = repository
    if from_fork:
        fork = Repository(login, repository.name, f"https://forge.invalid/{login}/{repository.name}.git")
    pr = PullRequest(
        number=number,
        title=_out(root, "log", "-1", "--format=%s", head),
        author=login,
        source_branch=source,
        target_branch=target,
        source_repo=fork,
        base_sha=base,
        head_sha=head,
        fork=from_fork,
    )
    event = Event(
        forge=forge or guess_forge(repository.clone_url),
        kind=EventKind.PULL_REQUEST,
        repository=repository,
        sha=head,
        action=action,
        ref=f"refs/pull/{number}/head",
        branch=source,
        sender=login,
        pull_request=pr,
    )
    return Synthetic(event, notes)


def comment(
    root: Path, forge: str, body: str, number: int, *, from_fork: bool = False, author: str = ""
) -> Synthetic:
    """``body`` commented on pull request ``number`` (the checked-out branch) by you."""
    found = pull_request(root, forge, number, from_fork=from_fork, author=author)
    you = local_user(root)
    event = Event(
        forge=found.event.forge,
        kind=EventKind.COMMENT,
        repository=found.event.repository,
        sha=found.event.sha,
        action="created",
        ref=found.event.ref,
        sender=you,
        pull_request=found.event.pull_request,
        comment=Comment(id="1", body=body, author=you),
    )
    return Synthetic(event, found.notes, commenter=you)


def manual(root: Path, forge: str, jobs: list[str], author: str = "") -> Synthetic:
    """A manual run (API or ``forgeflow trigger``) of ``jobs`` at the checked-out branch."""
    repository = repository_of(root)
    branch = current_branch(root)
    event = Event(
        forge=forge or guess_forge(repository.clone_url),
        kind=EventKind.MANUAL,
        repository=repository,
        sha=_head(root),
        action="manual",
        ref=f"refs/heads/{branch}" if branch else "",
        branch=branch,
        sender=author or local_user(root),
        extra={"jobs": ",".join(jobs)} if jobs else {},
    )
    return Synthetic(event)


def resolved(root: Path, event: Event) -> tuple[Event, list[str]]:
    """An event from a webhook file with its commit found in the checkout when the payload
    names none (a GitHub release whose ``target_commitish`` is a branch)."""
    if event.sha:
        return event, []
    sha = first_commit(root, event.ref, f"refs/tags/{event.tag}" if event.tag else "")
    note = f"note: the event names no commit; {event.ref or 'its ref'} is {sha[:7]} in the checkout"
    if not sha:
        sha = _head(root)
        note = (
            f"note: the event names no commit and the checkout has no {event.ref!r}; using HEAD ({sha[:7]})"
        )
    data = event.to_dict()
    data["sha"] = sha
    return Event.from_dict(data), [note]
