"""GitHub statuses: one request each, under whatever API root the instance has (Enterprise)."""

from __future__ import annotations

import json

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from service.events import Repository
from service.forges.base import ForgeError, StatusReport
from service.forges.github import GithubForge
from service.settings import ForgeInstance
from tests.forges.conftest import post
from tests.support.fake_github import FakeGitHub

SHA = "0123456789abcdef0123456789abcdef01234567"
REPO = Repository("octo", "hello", "https://github.com/octo/hello.git")
REPORT = StatusReport("forgeflow/unit", "running", "running", "https://ff.example/runs/1#job-unit")


def test_a_status_is_one_post_and_nothing_else(fake_github: FakeGitHub):
    forge = GithubForge(ForgeInstance(kind="github", api_url=fake_github.api_url, token="t0ken"))
    post(forge, REPO, SHA, REPORT)
    post(forge, REPO, SHA, StatusReport("forgeflow/unit", "success", "passed in 3s", REPORT.target_url))
    assert fake_github.requests == [
        ("POST", f"/repos/octo/hello/statuses/{SHA}"),
        ("POST", f"/repos/octo/hello/statuses/{SHA}"),
    ]
    assert [(s.state, s.description, s.context) for s in fake_github.statuses] == [
        ("pending", "running", "forgeflow/unit"),  # GitHub has no running state
        ("success", "passed in 3s", "forgeflow/unit"),
    ]
    assert fake_github.statuses[0].target_url == REPORT.target_url


def test_an_enterprise_api_root_prefixes_the_status_path(httpserver: HTTPServer):
    posted: list[tuple[str, dict[str, str], str]] = []

    def record(request: Request) -> Response:
        posted.append(
            (request.path, json.loads(request.get_data()), request.headers.get("Authorization", ""))
        )
        return Response(json.dumps({"id": 1, "state": "failure"}), 201, content_type="application/json")

    httpserver.expect_request(f"/api/v3/repos/octo/hello/statuses/{SHA}", method="POST").respond_with_handler(
        record
    )
    forge = GithubForge(ForgeInstance(kind="github", api_url=httpserver.url_for("/api/v3"), token="t0ken"))
    post(forge, REPO, SHA, StatusReport("forgeflow/unit", "failure", "x" * 200, REPORT.target_url))
    [(path, body, auth)] = posted
    assert path == f"/api/v3/repos/octo/hello/statuses/{SHA}"
    assert body["state"] == "failure" and body["context"] == "forgeflow/unit"
    assert len(body["description"]) <= 140  # GitHub refuses longer descriptions
    assert auth.endswith("t0ken")


def test_statuses_are_read_back_newest_per_context_without_ogr(fake_github: FakeGitHub):
    forge = GithubForge(ForgeInstance(kind="github", api_url=fake_github.api_url, token="t0ken"))
    post(forge, REPO, SHA, REPORT)
    post(forge, REPO, SHA, StatusReport("forgeflow/unit", "failure", "failed in 2s", REPORT.target_url))
    post(forge, REPO, SHA, StatusReport("forgeflow/lint", "success", "passed", REPORT.target_url))
    shown = {s.context: (s.state, s.description) for s in forge.statuses(REPO, SHA)}
    assert shown == {"forgeflow/unit": ("failure", "failed in 2s"), "forgeflow/lint": ("success", "passed")}
    verb, path = fake_github.requests[-1]
    assert (verb, path.split("?")[0]) == ("GET", f"/repos/octo/hello/commits/{SHA}/statuses")
    assert forge._ogr_service is None  # statuses, posted and read, never built ogr's service


def test_statuses_in_an_unexpected_shape_are_a_forge_error(httpserver: HTTPServer):
    httpserver.expect_request(f"/repos/octo/hello/commits/{SHA}/statuses").respond_with_json({"message": "?"})
    forge = GithubForge(ForgeInstance(kind="github", api_url=httpserver.url_for("/"), token="t0ken"))
    with pytest.raises(ForgeError, match="listed the statuses of 0123456 as dict"):
        forge.statuses(REPO, SHA)
