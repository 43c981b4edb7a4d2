"""The python-gitlab plumbing under :mod:`service.forges.gitlab`: a client that fails fast,
GitLab's words for states and reactions, and readers of its JSON."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import gitlab
from ogr.abstract import CommitStatus
from ogr.services.gitlab import GitlabService

from service.events import Repository

# GitHub-style reaction names -> GitLab award emoji names
REACTIONS = {
    "+1": "thumbsup",
    "-1": "thumbsdown",
    "laugh": "laughing",
    "hooray": "tada",
    "confused": "confused",
    "heart": "heart",
    "rocket": "rocket",
    "eyes": "eyes",
}


class QuietGitlab(gitlab.Gitlab):
    """python-gitlab that does not sleep through 429s itself: forgeflow's tasks retry with
    backoff, and a worker thread asleep for minutes helps no one."""

    def http_request(self, verb: str, path: str, *args: Any, **kwargs: Any) -> Any:
        kwargs["obey_rate_limit"] = False
        return super().http_request(verb, path, *args, **kwargs)


Observe = Callable[[Mapping[str, str], int], None]  # (response headers, status) -> None


class GitlabApiService(GitlabService):  # type: ignore[misc]
    """ogr's GitlabService with a request timeout, and no token check on first use; every
    answer's rate-limit headers go to ``observe``."""

    def __init__(self, token: str, instance_url: str, timeout: float, observe: Observe | None = None) -> None:
        super().__init__(token=token or None, instance_url=instance_url)
        self.timeout = timeout
        self.observe = observe

    @property
    def gitlab_instance(self) -> gitlab.Gitlab:
        instance: gitlab.Gitlab | None = getattr(self, "_gitlab_instance", None)
        if instance is None:
            instance = QuietGitlab(
                url=self.instance_url,
                private_token=self.token,
                ssl_verify=self.ssl_verify,
                timeout=self.timeout,
            )
            if self.observe is not None:
                observe = self.observe
                instance.session.hooks["response"].append(
                    lambda response, *args, **kwargs: observe(response.headers, response.status_code)
                )
            self._gitlab_instance = instance
        return instance


def gitlab_state(state: CommitStatus) -> str:
    """GitLab's word for a state: it says "failed" where ogr says failure."""
    return "failed" if state is CommitStatus.failure else state.name


def same_repository(a: Repository, b: Repository) -> bool:
    return a.full_name.lower() == b.full_name.lower()


def repository_of(attributes: dict[str, Any]) -> Repository:
    namespace, _, name = str(attributes.get("path_with_namespace", "")).rpartition("/")
    return Repository(
        namespace=namespace,
        name=name,
        clone_url=str(attributes.get("http_url_to_repo") or ""),
        html_url=str(attributes.get("web_url") or ""),
        default_branch=str(attributes.get("default_branch") or ""),
        private=attributes.get("visibility") == "private",
    )


def diff_paths(diffs: Iterable[dict[str, Any]], cap: int | None) -> list[str] | None:
    """Every path a list of GitLab diffs touches (both sides of a rename)."""
    diffs = list(diffs)
    if cap is not None and len(diffs) >= cap:
        return None
    paths = {p for d in diffs for p in (d.get("old_path"), d.get("new_path")) if p}
    return sorted(paths)
