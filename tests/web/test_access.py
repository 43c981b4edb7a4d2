"""Who sees what: runs of public repositories for everyone (by policy), of private ones for
people who can read them on the forge (signed in with it), and nothing for anyone else; tokens
for the API; forgeflow open to all only on this machine and only without sign-in."""

from __future__ import annotations

import pytest

from service.settings import load_settings
from service.web.auth import open_access
from tests.support.fake_github import FakeGitHub
from tests.support.runs import add_run, event
from tests.web.conftest import API_TOKEN, Web, instance_name, sign_in


@pytest.fixture
def runs(signed_web: Web, fake_github: FakeGitHub, git_repo) -> dict[str, int]:
    fake_github.add_repo("octo/open", git_repo)
    fake_github.add_repo("octo/secret", git_repo)
    fake_github.private.add("octo/secret")
    fake_github.permissions[("octo/secret", "reader")] = "read"
    fake_github.permissions[("octo/secret", "maria")] = "write"
    name = instance_name(signed_web)
    return {
        "open": add_run(signed_web.ctx, event("octo/open"), instance=name),
        "secret": add_run(signed_web.ctx, event("octo/secret", private=True), instance=name),
    }


def listed(web: Web, **headers: str) -> list[str]:
    return [r["repository"] for r in web.get("/api/runs", headers=headers).json["runs"]]


def test_anonymous_visitors_see_public_runs_only(signed_web: Web, runs: dict[str, int]):
    assert listed(signed_web) == ["octo/open"]
    assert signed_web.get(f"/api/runs/{runs['open']}").status_code == 200
    assert signed_web.get(f"/api/runs/{runs['secret']}").status_code == 401
    page = signed_web.get(f"/runs/{runs['secret']}", headers={"Accept": "text/html"})
    assert page.status_code == 401 and "Sign in with" in page.get_data(as_text=True)
    assert "octo/secret" not in signed_web.get("/runs").get_data(as_text=True)
    assert signed_web.get(f"/runs/{runs['secret']}/logs/build").status_code == 401


def test_a_reader_signed_in_with_the_forge_sees_private_runs_but_may_not_act(
    signed_web: Web, runs: dict[str, int], fake_github: FakeGitHub
):
    sign_in(signed_web, fake_github, "reader")
    assert listed(signed_web) == ["octo/secret", "octo/open"]
    secret = signed_web.get(f"/api/runs/{runs['secret']}").json
    assert secret["actions"] == []
    assert "action-rerun" not in signed_web.get(f"/runs/{runs['secret']}").get_data(as_text=True)


def test_someone_without_access_gets_404_and_a_maintainer_may_act(
    signed_web: Web, runs: dict[str, int], fake_github: FakeGitHub
):
    sign_in(signed_web, fake_github, "stranger")
    assert signed_web.get(f"/api/runs/{runs['secret']}").status_code == 404
    sign_in(signed_web, fake_github, "maria")
    assert signed_web.get(f"/api/runs/{runs['secret']}").json["actions"] == ["rerun"]
    assert 'id="action-rerun"' in signed_web.get(f"/runs/{runs['secret']}").get_data(as_text=True)


def test_public_runs_can_be_hidden_by_policy(make_settings, fake_github: FakeGitHub, git_repo):
    from service.context import build_context

    settings = make_settings(
        github_token="t", github_api_url=fake_github.api_url, github_oauth_client_id="c", public_runs=False
    )
    ctx = build_context(settings)
    try:
        web = Web(ctx)
        fake_github.add_repo("octo/open", git_repo)
        add_run(ctx, event("octo/open"), instance=instance_name(web))
        assert listed(web) == []
    finally:
        ctx.close()


def test_personal_tokens_act_as_their_user_and_can_be_revoked(
    signed_web: Web, runs: dict[str, int], fake_github: FakeGitHub
):
    sign_in(signed_web, fake_github, "reader")
    page = signed_web.get("/account").get_data(as_text=True)
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    made = signed_web.client.post("/account", data={"csrf_token": csrf, "name": "desk-token"})
    token = made.get_data(as_text=True).split('id="new-token">', 1)[1].split("<", 1)[0]
    assert token.startswith("ffp_")
    anonymous = Web(signed_web.ctx)  # a fresh client: no cookie
    bearer = {"Authorization": f"Bearer {token}"}
    assert anonymous.get("/api/me", headers=bearer).json["login"] == "reader"
    assert listed(anonymous, **bearer) == ["octo/secret", "octo/open"]
    assert anonymous.get("/api/me", headers={"Authorization": "Bearer ffp_nope"}).status_code == 401
    assert anonymous.get("/api/me", headers={"Authorization": "Basic x"}).status_code == 401
    assert anonymous.get("/api/me", headers={"Authorization": f"Bearer {API_TOKEN}"}).json["role"] == "admin"
    listing = signed_web.get("/account").get_data(as_text=True)
    assert "desk-token" in listing and token not in listing  # shown once, when made
    token_id = listing.split('name="revoke" value="', 1)[1].split('"', 1)[0]
    signed_web.client.post("/account", data={"csrf_token": csrf, "revoke": token_id})
    assert anonymous.get("/api/me", headers=bearer).status_code == 401
    assert "desk-token" not in signed_web.get("/account").get_data(as_text=True)


def test_forms_need_their_csrf_token(signed_web: Web, fake_github: FakeGitHub):
    sign_in(signed_web, fake_github, "reader")
    assert signed_web.client.post("/account", data={"name": "x"}).status_code == 400
    assert signed_web.client.post("/logout").status_code == 400


def test_a_forge_that_does_not_answer_is_503_not_a_yes(signed_web: Web, runs: dict[str, int], httpserver):
    httpserver.stop()  # the forge is gone
    try:
        response = signed_web.get(f"/api/runs/{runs['secret']}")
        assert response.status_code == 503 and "try again" in response.json["error"]
    finally:
        httpserver.start()


def test_sign_in_goes_back_only_to_this_site(signed_web: Web, fake_github: FakeGitHub):
    fake_github.oauth_user = "maria"
    name = instance_name(signed_web)
    import requests

    start = signed_web.client.get(f"/login/{name}?next=https://evil.example/")
    consent = requests.get(start.headers["Location"], allow_redirects=False, timeout=10)
    path = consent.headers["Location"].split("://", 1)[1].split("/", 1)[1]
    assert signed_web.client.get("/" + path).headers["Location"] == "/runs"
    bad_state = signed_web.client.get(f"/login/{name}/callback?code=x&state=forged")
    assert bad_state.status_code == 400


def test_open_access_only_on_loopback_and_only_without_sign_in():
    assert open_access(load_settings(environ={}))
    assert not open_access(load_settings(environ={"FORGEFLOW_HOST": "0.0.0.0"}))  # noqa: S104
    assert not open_access(load_settings(environ={"FORGEFLOW_HOST": "::", "FORGEFLOW_PORT": "1"}))
    assert open_access(load_settings(environ={"FORGEFLOW_HOST": "::1"}))
    signed = {"FORGEFLOW_GITHUB_TOKEN": "t", "FORGEFLOW_GITHUB_OAUTH_CLIENT_ID": "c"}
    assert not open_access(load_settings(environ=signed))
    assert not open_access(load_settings(environ={"FORGEFLOW_LOCAL_OPEN_ACCESS": "false"}))


def test_pagure_users_sign_in_with_an_api_token_and_groups_count(make_settings, httpserver, git_repo):
    from service.context import build_context
    from tests.support.fake_pagure import FakePagure

    pagure = FakePagure(httpserver, token="service-token")
    pagure.add_project(
        "rpms/private-pkg", git_repo, users={"commit": ["ann"]}, groups={"commit": ["packagers"]}
    )
    pagure.groups["packagers"] = ["bob"]
    pagure.user_tokens.update({"ann-token": "ann", "bob-token": "bob", "eve-token": "eve"})
    settings = make_settings(pagure_token="service-token", pagure_api_url=pagure.url, access_cache_seconds=0)
    ctx = build_context(settings)
    try:
        web = Web(ctx)
        name = ctx.settings.forge_instances()[0].name
        the_event = event("rpms/private-pkg", web=pagure.url, forge="pagure")
        run_id = add_run(ctx, the_event, instance=name, phase="failed", jobs=(("a", "a", "failure"),))
        assert f"{name} API token" in web.get("/login").get_data(as_text=True)

        def sign_in_with(token: str) -> int:
            page = web.get("/login").get_data(as_text=True)  # a new session has a new CSRF token
            csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            form = {"csrf_token": csrf, "token": token, "next": f"/runs/{run_id}"}
            return web.client.post(f"/login/{name}/token", data=form).status_code

        assert sign_in_with("wrong") == 401
        for pasted in ("ann-token\nX-Injected: 1", "ann\x00token", "ann token", "tökén"):
            assert sign_in_with(pasted) == 400  # not a token, not a 503 from the forge's client
        assert sign_in_with("bob-token") == 303
        assert web.get("/api/me").json["login"] == "bob"
        assert web.get(f"/api/runs/{run_id}").json["actions"] == ["rerun", "rerun-failed"]  # a packager
        assert sign_in_with("eve-token") == 303
        assert web.get(f"/api/runs/{run_id}").json["actions"] == []  # public project: may read only
    finally:
        ctx.close()


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "\\\\evil.example/",
        "/\t/evil.example/",
        "/\n/evil.example/",
        "/\r/evil.example/",
        "/\t\\evil.example/",
        "/ /evil.example/",
        "/\x00/evil.example/",
        "/\u200b/evil.example/",
        "/runs\\..\\..\\/evil.example",
        "javascript:alert(1)",
        "runs",
        "/" + "a" * 3000,
    ],
)
def test_sign_in_never_goes_to_another_host(signed_web: Web, target: str):
    from service.web.login import safe_next

    with signed_web.app.test_request_context("/login"):
        assert safe_next(target) == "/runs"
        assert safe_next("/runs/12?job=build#log") == "/runs/12?job=build#log"
        assert safe_next("/runs?repository=octo/ünïcode") == "/runs?repository=octo/ünïcode"


def test_open_access_answers_only_requests_naming_this_machine(web: Web, signed_web: Web):
    """DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1 is, to the
    browser, the same site as forgeflow: it could read the CSRF token and act as the admin.
    Its requests still name evil.example as the host."""
    from tests.support.runs import add_run

    run_id = add_run(web.ctx, phase="running", jobs=(("build", "build", "running"),))
    rebound = {"Host": "evil.example:8080", "Origin": "http://evil.example:8080"}
    page = web.get(f"/runs/{run_id}", headers=rebound)
    assert page.status_code == 403 and "open to this machine only" in page.get_data(as_text=True)
    acted = web.client.post(f"/runs/{run_id}/actions", data={"action": "cancel"}, headers=rebound)
    assert acted.status_code == 403
    assert web.get("/api/runs", headers={"Host": "127.0.0.1.evil.example"}).status_code == 403
    assert web.get("/api/me", headers={"Host": "evil.example"}).status_code == 403
    for host in ("127.0.0.1:8080", "localhost:8080", "[::1]:8080", "127.0.0.1", "localhost"):
        assert web.get("/api/me", headers={"Host": host}).json["role"] == "admin", host
    assert web.get("/livez", headers={"Host": "evil.example"}).status_code == 200  # probes: no viewer
    # signed-in mode: the proxy decides the host, anyone there is a stranger until signed in
    assert signed_web.get("/api/me", headers={"Host": "ci.example.com"}).status_code == 200
