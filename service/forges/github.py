"""GitHub (and GitHub Enterprise) through ogr and PyGithub.

What differs from the generic ogr forge: the API root is configurable (Enterprise, tests), and
changed files come from GitHub's compare and pull-request files APIs, which cap their lists
(at the cap the list may be partial, so path filters treat it as unknown).

With an App id configured (App mode) every call carries the installation token of the
repository it is about (:mod:`service.forges.github_app`; a token GitHub refuses with 401 is
replaced and the call made once more), rate limits are kept per installation, and jobs can be
reported as check runs (:meth:`GithubForge.check_run`, see :mod:`service.forges.checks`).
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from service.events import Repository
from service.forges.base import ForgeError, PullRequestInfo, ReportedStatus, StatusReport
from service.forges.checkout import CheckoutCredential, configured_credential, same_forge
from service.forges.checks import CheckRunReport, check_run_body
from service.forges.errors import http_status_of
from service.forges.github_rest import RestClient
from service.forges.ogr_forge import OgrForge

if TYPE_CHECKING:
    from service.forges.github_app import GithubApp, InstallationToken

T = TypeVar("T")

# GitHub lists at most 300 files in a comparison and 3,000 in a pull request.
GITHUB_COMPARE_FILE_CAP = 300
GITHUB_PR_FILE_CAP = 3000


GITHUB_WRITE_PERMISSIONS = frozenset({"admin", "maintain", "write"})
GITHUB_STATES = frozenset({"pending", "success", "failure", "error"})  # what a commit status may say
STATUS_PAGE_SIZE = 100
STATUS_PAGES = 10  # GitHub keeps at most 1,000 statuses per commit and context


class GithubForge(OgrForge):
    """github.com or a GitHub Enterprise instance, with a token or as a GitHub App."""

    app: GithubApp | None = None
    rest: RestClient

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.app_mode:
            from service.forges.github_app import GithubApp
            from service.forges.installations import InstallationStore

            self.app = GithubApp(
                self.instance.app_id,
                self.instance.app_key(),
                self.instance.api_url,
                instance=self.name,
                installations=InstallationStore(self.db) if self.db is not None else None,
                limits=self.limits,
                timeout=self.timeout,
            )
        self.rest = RestClient(self.instance.api_url, self.timeout)
        self._through_rest = threading.local()  # whether this thread's call noted its own headers

    def make_service(self) -> Any:
        """ogr's service, for the calls forgeflow's own REST client does not make (imported
        here, at the first of them)."""
        from service.forges.github_ogr import GithubApiService

        return GithubApiService(self.instance.token, self.instance.api_url, self.timeout, self.app)

    # -- App mode ----------------------------------------------------------------------------

    @property
    def reports_check_runs(self) -> bool:
        """Jobs are shown as check runs (App mode) rather than commit statuses."""
        return self.app is not None and self.instance.check_runs

    def note_installation(self, repo: Repository, installation_id: int) -> None:
        """A delivery said which installation covers ``repo``."""
        if self.app is not None:
            self.app.remember(repo.full_name, installation_id)

    def checkout_token(self, repo: Repository) -> InstallationToken | None:
        """A short-lived, read-only token for cloning ``repo`` only (App mode; None with a
        personal token, which forgeflow never hands to a job)."""
        if self.app is None:
            return None
        app = self.app
        return self._call(
            f"getting a checkout token for {repo.full_name}", lambda: app.checkout_token(repo.full_name)
        )

    def budget_key(self, repo: Repository | None) -> str:
        if self.app is None:
            return "token"
        return self.app.budget_key(repo.full_name) if repo is not None else "app"

    def _call(self, what: str, fn: Callable[[], T], repo: Repository | None = None) -> T:
        """As the generic call, plus: in App mode a token GitHub refuses (401) is replaced and
        the call made once more; the budget GitHub reports is noted for the installation (by
        :meth:`_api` from the answer's headers, else from what PyGithub saw)."""
        self._through_rest.noted = False
        try:
            result = super()._call(what, fn, repo)
        except ForgeError as exc:
            if self.app is None or repo is None or http_status_of(exc) != 401:
                raise
            self.app.invalidate(repo.full_name)
            result = super()._call(what, fn, repo)
        if repo is not None and not self._through_rest.noted and self._ogr_service is not None:
            self._observe(repo)
        return result

    def _observe(self, repo: Repository) -> None:
        """What PyGithub last saw of the rate limit of ``repo``'s token."""
        try:
            requester = self.project(repo).github_instance.requester
            remaining, limit = requester.rate_limiting
            reset = requester.rate_limiting_resettime
        except Exception:
            return
        if remaining >= 0:
            headers = {"X-RateLimit-Remaining": str(remaining), "X-RateLimit-Limit": str(limit)}
            if reset:
                headers["X-RateLimit-Reset"] = str(reset)
            self.limits.observe(self.kind, self.name, self.budget_key(repo), headers)

    def _api(self, repo: Repository, verb: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One request under the repository's API root (forgeflow's own client, see
        :mod:`service.forges.github_rest`), its rate-limit headers noted."""
        owner, name = quote(repo.namespace, safe=""), quote(repo.name, safe="")
        token = self.app.token(repo.full_name) if self.app is not None else self.instance.token
        headers, data = self.rest.request(verb, f"/repos/{owner}/{name}{path}", token, body)
        self.limits.observe(self.kind, self.name, self.budget_key(repo), headers)
        self._through_rest.noted = True
        return data

    def fetch_file(self, repo: Repository, path: str, ref: str) -> str | None:
        """One ``GET /repos/{owner}/{repo}/contents/{path}?ref=``: the file's text, or None."""

        def read() -> str | None:
            data = self._api(repo, "GET", f"/contents/{quote(path)}?ref={quote(ref, safe='')}")
            if not isinstance(data, dict) or data.get("type", "file") != "file":
                raise ForgeError(f"{path} at {ref[:12]} of {repo.full_name} is not a file")
            if data.get("encoding") != "base64":  # over 1 MB: the contents API leaves it out
                raise ForgeError(f"{path} at {ref[:12]} of {repo.full_name} is too large to read")
            return base64.b64decode(data.get("content") or "").decode()

        try:
            return self._call(f"reading {path} of {repo.full_name} at {ref[:12]}", read, repo)
        except ForgeError as exc:
            if http_status_of(exc) == 404:
                return None
            raise

    def check_run(self, repo: Repository, sha: str, report: CheckRunReport) -> str:
        """Create the check run (no ``check_run_id``) or update it: one request. Its id."""
        body = check_run_body(report, sha)

        def send() -> str:
            if report.check_run_id:
                self._api(repo, "PATCH", f"/check-runs/{quote(report.check_run_id, safe='')}", body)
                return report.check_run_id
            return str(self._api(repo, "POST", "/check-runs", body)["id"])

        return self._call(f"reporting check run {report.name} on {repo.full_name}@{sha[:7]}", send, repo)

    def find_check_run(self, repo: Repository, sha: str, name: str, external_id: str) -> str:
        """The id of a check run created earlier for ``external_id`` (after an answer that got
        lost), or ""."""

        def find() -> str:
            query = f"?check_name={quote(name, safe='')}&filter=all&per_page=100"
            data = self._api(repo, "GET", f"/commits/{quote(sha, safe='')}/check-runs{query}")
            for run in (data or {}).get("check_runs") or []:
                if str(run.get("external_id") or "") == external_id:
                    return str(run["id"])
            return ""

        return self._call(f"looking for check run {name} on {repo.full_name}@{sha[:7]}", find, repo)

    def checkout_credential(self, repo: Repository, clone_url: str) -> CheckoutCredential | None:
        """The GitHub App's installation token for this repository when the App is configured,
        else the configured token."""
        if not same_forge(self.instance, clone_url):
            return None
        return self.app_checkout_credential(repo) or configured_credential(self.instance, clone_url)

    def app_checkout_credential(self, repo: Repository) -> CheckoutCredential | None:
        """In App mode, an installation access token limited to ``repositories: [repo]`` and
        ``permissions: {contents: read}`` (an hour at most, as GitHub makes them), as
        ``x-access-token``; None with a configured token."""
        token = self.checkout_token(repo)
        if token is None:
            return None
        return CheckoutCredential(
            "x-access-token", token.token, token.expires_at, source="GitHub App installation token"
        )

    def set_status(self, repo: Repository, sha: str, status: StatusReport) -> None:
        """One ``POST /repos/{owner}/{repo}/statuses/{sha}``: ogr's commit flag first GETs the
        commit (and the repository), a request or two per status that tells us nothing.
        GitHub keeps at most 140 characters of a description."""
        if status.state not in GITHUB_STATES:
            raise ForgeError(f"{self.name} has no commit state {status.state!r}")
        body = {
            "state": status.state,
            "target_url": status.target_url,
            "description": status.description[:140],
            "context": status.context,
        }
        self._call(
            f"setting {status.context} on {repo.full_name}@{sha[:7]}",
            lambda: self._api(repo, "POST", f"/statuses/{quote(sha, safe='')}", body),
            repo,
        )

    def statuses(self, repo: Repository, sha: str) -> list[ReportedStatus]:
        """The latest status of each context on the commit: ``GET .../commits/{sha}/statuses``
        lists them newest first, a page of 100 at a time (at most :data:`STATUS_PAGES` pages)."""

        def read() -> list[ReportedStatus]:
            latest: dict[str, ReportedStatus] = {}
            for page in range(1, STATUS_PAGES + 1):
                query = f"?per_page={STATUS_PAGE_SIZE}&page={page}"
                rows = self._api(repo, "GET", f"/commits/{quote(sha, safe='')}/statuses{query}") or []
                if not isinstance(rows, list):
                    raise ForgeError(f"GitHub listed the statuses of {sha[:7]} as {type(rows).__name__}")
                for row in rows:
                    if not isinstance(row, dict):
                        continue
                    context = str(row.get("context") or "")
                    if context not in latest:
                        latest[context] = ReportedStatus(
                            context=context,
                            state=str(row.get("state") or ""),
                            description=str(row.get("description") or ""),
                            target_url=str(row.get("target_url") or ""),
                        )
                if len(rows) < STATUS_PAGE_SIZE:
                    break
            return list(latest.values())

        return self._call(f"reading statuses of {repo.full_name}@{sha[:7]}", read, repo)

    def changed_files(self, repo: Repository, base: str, head: str) -> list[str] | None:
        def compare() -> list[str] | None:
            comparison = self.project(repo).github_repo.compare(base, head)
            files = [f.filename for f in comparison.files]
            return None if len(files) >= GITHUB_COMPARE_FILE_CAP else sorted(set(files))

        return self._call(f"comparing {base[:7]}...{head[:7]} of {repo.full_name}", compare, repo)

    def pull_request_files(self, repo: Repository, number: int) -> list[str] | None:
        def files() -> list[str] | None:
            pull = self.project(repo).github_repo.get_pull(number)
            names = [f.filename for f in pull.get_files()]
            return None if len(names) >= GITHUB_PR_FILE_CAP else sorted(set(names))

        return self._call(f"listing the files of #{number} in {repo.full_name}", files, repo)

    def has_write_access(self, repo: Repository, user: str) -> bool:
        """admin, maintain or write on the repository (one request, not the collaborator list)."""

        from service.forges.github_ogr import UnknownObjectException

        def permission() -> bool:
            try:
                level = self.project(repo).github_repo.get_collaborator_permission(user)
            except UnknownObjectException:
                return False  # no such user
            return level in GITHUB_WRITE_PERMISSIONS

        return self._call(f"asking whether {user} may write to {repo.full_name}", permission, repo)

    def pull_request_info(self, repo: Repository, number: int) -> PullRequestInfo:
        """One request: everything comes from the pull request's own JSON."""

        def read() -> PullRequestInfo:
            pull = self.project(repo).github_repo.get_pull(number)
            head_repo = pull.head.repo  # None when the fork was deleted
            source = (
                Repository(
                    head_repo.owner.login, head_repo.name, head_repo.clone_url or "", head_repo.html_url or ""
                )
                if head_repo is not None
                else None
            )
            fork = source is None or source.full_name.lower() != repo.full_name.lower()
            state = "merged" if pull.merged else ("open" if pull.state == "open" else "closed")
            return PullRequestInfo(
                number=number,
                head_sha=pull.head.sha,
                author=pull.user.login if pull.user else "",
                source_branch=pull.head.ref,
                target_branch=pull.base.ref,
                source_repo=source,
                fork=fork,
                state=state,
                draft=bool(pull.draft),
                title=pull.title or "",
                labels=tuple(label.name for label in pull.labels),
            )

        return self._call(f"reading pull request #{number} of {repo.full_name}", read, repo)
