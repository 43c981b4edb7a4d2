"""Forge-neutral events: what a webhook means, independent of the forge that sent it.

Every handler in ``handlers/`` turns a verified delivery into one of these frozen values (or
ignores it with a reason). They are plain data: they serialise to JSON for the queue and the
database, and come back equal (``Event.from_json(e.to_json()) == e``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson


class EventKind(StrEnum):
    """What happened, in the words a job file's ``on:`` uses."""

    PUSH = "push"  # commits pushed to a branch
    TAG = "tag"  # a tag was pushed / created
    PULL_REQUEST = "pull_request"  # a pull/merge request was opened, updated, closed...
    COMMENT = "comment"  # a comment on a pull/merge request
    RELEASE = "release"  # a release was published
    MANUAL = "manual"  # a run started from the API or CLI
    RERUN = "rerun"  # a forge asked to re-run checks (GitHub check_run/check_suite)
    SCHEDULE = "schedule"  # a job's cron schedule fired (extra: schedule = the cron)
    ACTION = "action"  # someone acted on a run page: re-run, cancel, approve (service.commands.actions)
    MERGE_GROUP = "merge_group"  # a merge queue asks for checks on a merge group's head (GitHub)
    INSTALLATION = "installation"  # a GitHub App was installed, changed or removed somewhere


def is_zero_sha(sha: str) -> bool:
    """The all-zero object name forges send for "no commit" (a created or deleted ref)."""
    return bool(sha) and set(sha) == {"0"}


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> Any:
    cls = type(value)
    if cls in _SCALARS:  # most fields: the quick way out (this runs on every webhook)
        return value
    names = _FIELD_NAMES.get(cls)
    if names is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(value))
    if names is not None:
        return {name: _plain(getattr(value, name)) for name in names}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


@dataclass(frozen=True)
class Repository:
    """A repository on a forge. ``full_name`` is ``namespace/name`` (GitLab groups may nest)."""

    namespace: str
    name: str
    clone_url: str
    html_url: str = ""
    default_branch: str = ""
    private: bool = False

    @property
    def full_name(self) -> str:
        # top-level projects (e.g. on pagure.io) have no namespace
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True)
class PullRequest:
    number: int
    title: str = ""
    author: str = ""
    source_branch: str = ""
    target_branch: str = ""
    source_repo: Repository | None = None  # where the head commit lives (a fork, or the target)
    base_sha: str = ""
    head_sha: str = ""
    fork: bool = False
    draft: bool = False
    labels: tuple[str, ...] = ()
    url: str = ""


@dataclass(frozen=True)
class Comment:
    id: str
    body: str
    author: str
    url: str = ""


@dataclass(frozen=True)
class Event:
    """One forge event forgeflow may act on.

    ``sha`` is the commit jobs run on (the head of a pull request, the pushed commit); ``ref``
    the full git ref when there is one (``refs/heads/main``, ``refs/tags/v1``,
    ``refs/pull/7/head``). ``instance`` is the forge's web root (``https://github.com``), so
    several instances of one forge kind can be told apart.
    """

    forge: str
    kind: EventKind
    repository: Repository
    sha: str
    instance: str = ""
    action: str = ""
    ref: str = ""
    branch: str = ""
    tag: str = ""
    before: str = ""
    sender: str = ""
    pull_request: PullRequest | None = None
    comment: Comment | None = None
    created: bool = False  # a push that created the branch
    changed_files: tuple[str, ...] | None = None  # when the payload lists them completely
    delivery_id: str = ""
    extra: dict[str, str] = field(default_factory=dict, hash=False, compare=True)

    @property
    def short_sha(self) -> str:
        return self.sha[:7]

    @property
    def target_branch(self) -> str:
        """The branch a job's ``branches:`` filter is matched against."""
        if self.pull_request is not None:
            return self.pull_request.target_branch
        if self.kind is EventKind.MERGE_GROUP:  # the branch the queue merges into
            return self.extra.get("base_branch", "")
        return self.branch

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (what ``dataclasses.asdict`` gives, without its deep copies)."""
        result: dict[str, Any] = _plain(self)
        return result

    def to_json(self) -> str:
        """The JSON stored with a delivery (what :meth:`to_dict` gives, serialised by orjson
        straight from the dataclasses: this runs on every webhook)."""
        return orjson.dumps(self).decode()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        def repo(value: dict[str, Any] | None) -> Repository | None:
            return Repository(**value) if value is not None else None

        pr_data = data.get("pull_request")
        pull_request = None
        if pr_data is not None:
            pr_fields = dict(pr_data)
            pr_fields["source_repo"] = repo(pr_fields.get("source_repo"))
            pr_fields["labels"] = tuple(pr_fields.get("labels") or ())
            pull_request = PullRequest(**pr_fields)
        comment = Comment(**data["comment"]) if data.get("comment") is not None else None
        changed = data.get("changed_files")
        fields = dict(data)
        fields.update(
            kind=EventKind(data["kind"]),
            repository=Repository(**data["repository"]),
            pull_request=pull_request,
            comment=comment,
            changed_files=tuple(changed) if changed is not None else None,
            extra=dict(data.get("extra") or {}),
        )
        return cls(**fields)

    @classmethod
    def from_json(cls, text: str) -> Event:
        return cls.from_dict(json.loads(text))

    def describe(self) -> str:
        """A short human description, for logs and run pages."""
        where = self.repository.full_name
        if self.kind is EventKind.PULL_REQUEST and self.pull_request is not None:
            return f"{where}: pull request #{self.pull_request.number} {self.action} at {self.short_sha}"
        if self.kind is EventKind.COMMENT and self.pull_request is not None:
            return f"{where}: comment on #{self.pull_request.number} by {self.sender}"
        if self.kind is EventKind.TAG:
            return f"{where}: tag {self.tag} at {self.short_sha}"
        if self.kind is EventKind.PUSH:
            return f"{where}: push to {self.branch} at {self.short_sha}"
        if self.kind is EventKind.SCHEDULE:
            return f"{where}: schedule {self.extra.get('schedule', '')} on {self.branch} at {self.short_sha}"
        if self.kind is EventKind.MANUAL:
            what = self.branch or self.tag or self.ref or "commit"
            by = f" by {self.sender}" if self.sender else ""
            return f"{where}: manual run of {what} at {self.short_sha}{by}"
        if self.kind is EventKind.ACTION:
            return f"{where}: {self.action} of run {self.extra.get('run', '?')} by {self.sender}"
        if self.kind is EventKind.MERGE_GROUP:
            return f"{where}: merge group into {self.target_branch} at {self.short_sha}"
        return f"{where}: {self.kind.value} at {self.short_sha}"
