"""Pagure (pagure.io, src.fedoraproject.org) through ogr's requests-based Pagure client.

What Pagure does its own way:

- Statuses are *flags*: a pull request's go on the pull request (``/pull-request/<id>/flag``,
  ogr's ``set_flag``), a push's on the commit (``/c/<sha>/flag``). A flag is updated in place
  when posted again with the same ``uid``, so every context has a fixed uid; without one each
  post would add another flag. States: success, failure, error, pending, canceled.
- Project names: ``ns/name``, ``name`` at the top level, ``forks/<user>/ns/name`` for a fork.
- Write access means owner, admin or committer, directly or through a group; "collaborator"
  (push to some branches only) and "ticket" do not count.
- Pagure has no comparison API (``changed_files`` is None) and no reactions (``react`` is False);
  a pull request's files come from its ``diffstats``.
- ogr's client retries 401/403/429/5xx for minutes with a 30 s backoff and no timeout; here it
  fails fast instead (forgeflow's tasks retry), and every request has a timeout.
"""

from __future__ import annotations

import hashlib
from typing import Any

import requests
from ogr.abstract import CommitStatus
from ogr.exceptions import PagureAPIException
from ogr.services.pagure import PagureProject, PagureService
from urllib3.util import Retry

from handlers.base import Payload
from handlers.pagure import pull_request as pull_request_from_json
from service.events import Repository
from service.forges.base import PullRequestInfo, ReportedStatus, StatusReport
from service.forges.ogr_forge import OgrForge

WRITE_LEVELS = ("owner", "admin", "commit")
NO_STATS = ("ENOPRSTATS", "No statistics")


class _TimeoutAdapter(requests.adapters.HTTPAdapter):
    """Every request with a timeout, and no retries below forgeflow's own."""

    def __init__(self, timeout: float) -> None:
        super().__init__(
            max_retries=Retry(
                total=0, status_forcelist=(), respect_retry_after_header=False, raise_on_status=False
            )
        )
        self.timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


def flag_uid(repo: Repository, context: str) -> str:
    """The fixed uid of a context's flag (Pagure keys commit flags by commit and uid across
    all projects, so the repository is part of it; at most 32 characters)."""
    return hashlib.md5(f"{repo.full_name}\n{context}".encode(), usedforsecurity=False).hexdigest()


def project_parts(repo: Repository) -> tuple[str | None, str, str | None]:
    """(namespace, name, fork owner) of a Pagure project named like the webhook names it."""
    parts = repo.full_name.split("/")
    user = None
    if len(parts) >= 3 and parts[0] == "forks":
        user, parts = parts[1], parts[2:]
    namespace = "/".join(parts[:-1]) or None
    return namespace, parts[-1], user


class PagureForge(OgrForge):
    """A Pagure instance."""

    def make_service(self) -> Any:
        service = PagureService(token=self.instance.token or None, instance_url=self.instance.api_url)
        adapter = _TimeoutAdapter(self.timeout)
        service.session.mount("https://", adapter)
        service.session.mount("http://", adapter)
        return service

    def get_project(self, repo: Repository) -> Any:
        namespace, name, user = project_parts(repo)
        # a username is always given: without one ogr asks the API who the token belongs to
        return PagureProject(
            repo=name, namespace=namespace, service=self._service, username=user, is_fork=user is not None
        )

    def post_status(
        self, repo: Repository, sha: str, report: StatusReport, state: CommitStatus, description: str
    ) -> None:
        project = self.project(repo)
        uid = flag_uid(repo, report.context)
        if report.pull_request is not None:
            project.get_pr(report.pull_request).set_flag(
                username=report.context,
                comment=description,
                url=report.target_url,
                status=state,
                uid=uid,
            )
        else:
            project.set_commit_status(
                sha, state, report.target_url, description, report.context, uid=uid, trim=True
            )

    def statuses(self, repo: Repository, sha: str) -> list[ReportedStatus]:
        """The commit's flags (a pull request's flags are on the pull request, not here)."""

        def read() -> list[ReportedStatus]:
            flags = self.project(repo)._call_project_api("c", sha, "flag").get("flags") or []
            latest: dict[str, dict[str, Any]] = {}
            for flag in flags:
                current = latest.get(flag["username"])
                if current is None or int(flag.get("date_updated") or 0) >= int(
                    current.get("date_updated") or 0
                ):
                    latest[flag["username"]] = flag
            return [
                ReportedStatus(
                    context=f["username"],
                    state=str(f.get("status") or ""),
                    description=f.get("comment") or "",
                    target_url=f.get("url") or "",
                )
                for f in latest.values()
            ]

        return self._call(f"reading flags of {repo.full_name}@{sha[:7]}", read)

    def pull_request_files(self, repo: Repository, number: int) -> list[str] | None:
        def files() -> list[str] | None:
            try:
                stats = self.project(repo)._call_project_api("pull-request", str(number), "diffstats")
            except PagureAPIException as exc:
                if any(word in f"{exc} {exc.pagure_error}" for word in NO_STATS):
                    return None  # Pagure is still computing them
                raise
            paths = {p for name, s in stats.items() for p in (name, (s or {}).get("old_path")) if p}
            return sorted(paths)

        return self._call(f"listing the files of #{number} in {repo.full_name}", files)

    def pull_request_info(self, repo: Repository, number: int) -> PullRequestInfo:
        def read() -> PullRequestInfo:
            raw = self.project(repo)._call_project_api("pull-request", str(number))
            pr, _ = pull_request_from_json(Payload(raw), self.instance.url)
            status = str(raw.get("status") or "").lower()
            return PullRequestInfo(
                number=pr.number,
                head_sha=pr.head_sha,
                author=pr.author,
                source_branch=pr.source_branch,
                target_branch=pr.target_branch,
                source_repo=pr.source_repo,
                fork=pr.fork,
                state="open" if status == "open" else ("merged" if status == "merged" else "closed"),
                draft=pr.draft,
                title=pr.title,
                labels=pr.labels,
            )

        return self._call(f"reading pull request #{number} of {repo.full_name}", read)

    def has_write_access(self, repo: Repository, user: str) -> bool:
        def check() -> bool:
            info = self.project(repo).get_project_info()
            users = info.get("access_users") or {}
            if any(user in (users.get(level) or []) for level in WRITE_LEVELS):
                return True
            groups = info.get("access_groups") or {}
            names = sorted({g for level in WRITE_LEVELS for g in groups.get(level) or []})
            return any(user in self._service.get_group(name).members for name in names)

        return self._call(f"asking whether {user} may write to {repo.full_name}", check)

    def comment(self, repo: Repository, number: int, body: str) -> None:
        self._call(
            f"commenting on #{number} of {repo.full_name}",
            lambda: self.project(repo)._call_project_api(
                "pull-request", str(number), "comment", method="POST", data={"comment": body}
            ),
        )

    def react(self, repo: Repository, number: int, comment_id: str, reaction: str) -> bool:
        return False  # Pagure has no reactions
