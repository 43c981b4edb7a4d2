"""Each forge library's errors sorted into retry-worthy (transient) and permanent ones."""

from __future__ import annotations

import github
import gitlab
import httpx
import pytest
import requests
from ogr.exceptions import (
    APIException,
    GitForgeInternalError,
    GitlabAPIException,
    OgrNetworkError,
    PagureAPIException,
)
from pyforgejo.core.api_error import ApiError
from pyforgejo.errors import NotFoundError

from service.events import Repository
from service.forges.base import TransientForgeError
from service.forges.errors import classify, http_status_of
from service.forges.forgejo import ForgejoForge
from service.forges.gitlab import GitlabForge
from service.forges.pagure import PagureForge
from service.settings import ForgeInstance


def chained(outer: Exception, cause: Exception) -> Exception:
    """``outer`` raised from ``cause``, the way ogr wraps library errors."""
    try:
        try:
            raise cause
        except Exception as inner:
            raise outer from inner
    except Exception as caught:
        return caught


TRANSIENT = [
    ("python-gitlab 502", gitlab.GitlabHttpError("Bad Gateway", response_code=502), 502),
    ("python-gitlab 429", gitlab.GitlabCreateError("Too Many Requests", response_code=429), 429),
    ("ogr over python-gitlab", chained(GitlabAPIException("x"), gitlab.GitlabGetError("x", 503)), 503),
    ("pyforgejo 503", ApiError(status_code=503, body="unavailable"), 503),
    ("httpx refused", httpx.ConnectError("connection refused"), None),
    ("httpx timeout", httpx.ReadTimeout("timed out"), None),
    ("Pagure 429", PagureAPIException("slow down", response_code=429), 429),
    ("Pagure 5xx", GitForgeInternalError("Pagure API returned 503 status for `u` with reason: `x`"), 503),
    ("Pagure unreachable", chained(OgrNetworkError("Cannot connect"), requests.ConnectionError()), None),
    ("GitHub 500", github.GithubException(500, {"message": "oops"}), 500),
    ("GitHub rate limit", github.GithubException(403, {"message": "API rate limit exceeded"}), 403),
]
PERMANENT = [
    ("python-gitlab 403", gitlab.GitlabCreateError("403 Forbidden", response_code=403), 403),
    ("python-gitlab 400", gitlab.GitlabCreateError("state is invalid", response_code=400), 400),
    ("pyforgejo 404", NotFoundError(body={"message": "not found"}), 404),
    ("pyforgejo 422", ApiError(status_code=422, body="invalid state"), 422),
    ("Pagure 400", PagureAPIException("Invalid input", response_code=400), 400),
    ("Pagure 401", PagureAPIException("Invalid token", response_code=401), 401),
    ("GitHub 404", github.GithubException(404, {"message": "Not Found"}), 404),
    ("ogr without a status", APIException("abstract"), None),
]


@pytest.mark.parametrize(("what", "exc", "status"), TRANSIENT, ids=[t[0] for t in TRANSIENT])
def test_transient(what: str, exc: Exception, status: int | None):
    error = classify(exc, what)
    assert isinstance(error, TransientForgeError)
    assert http_status_of(exc) == status


@pytest.mark.parametrize(("what", "exc", "status"), PERMANENT, ids=[t[0] for t in PERMANENT])
def test_permanent(what: str, exc: Exception, status: int | None):
    error = classify(exc, what)
    assert not isinstance(error, TransientForgeError)
    assert http_status_of(exc) == status
    assert what in str(error)


def test_a_rate_limit_says_when_to_retry():
    error = classify(github.GithubException(403, {"message": "API rate limit exceeded"}), "x")
    assert isinstance(error, TransientForgeError) and error.retry_after == 60


@pytest.mark.parametrize("forge", [GitlabForge, ForgejoForge, PagureForge])
def test_an_unreachable_forge_is_transient(forge):
    kind = {GitlabForge: "gitlab", ForgejoForge: "forgejo", PagureForge: "pagure"}[forge]
    closed = forge(ForgeInstance(kind=kind, api_url="http://127.0.0.1:9", token="t"), timeout=2)
    with pytest.raises(TransientForgeError):
        closed.read_file(Repository("group", "proj", ""), ".forgeflow.yaml", "main")
