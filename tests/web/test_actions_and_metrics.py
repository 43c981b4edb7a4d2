"""Acting on a run from its page (allowed as the comment commands allow, CSRF-protected, stored
for the worker like a webhook), and the operator's view: /metrics moving, /livez, /readyz."""

from __future__ import annotations

import json

from sqlalchemy import select

from service.cli.replay import signed_headers
from service.store.models import Delivery
from tests.support import payloads
from tests.support.fake_github import FakeGitHub
from tests.support.runs import add_run, event
from tests.web.conftest import API_TOKEN, Web, instance_name, sign_in


def _csrf(page: str) -> str:
    return page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def _actions(web: Web) -> list[tuple[str, dict]]:
    with web.ctx.db.session() as session:
        rows = session.scalars(select(Delivery).where(Delivery.event_type == "action")).all()
        return [(row.delivery_id, json.loads(row.event_json)) for row in rows]


def test_a_maintainer_reruns_from_the_page_and_the_request_waits_for_the_worker(
    signed_web: Web, fake_github: FakeGitHub, git_repo
):
    fake_github.add_repo("octo/hello", git_repo)
    fake_github.permissions[("octo/hello", "maria")] = "write"
    run_id = add_run(
        signed_web.ctx,
        event(),
        instance=instance_name(signed_web),
        phase="failed",
        jobs=(("build", "build", "success"), ("test", "test", "failure")),
    )
    anonymous_page = signed_web.get(f"/runs/{run_id}").get_data(as_text=True)
    assert "action-rerun" not in anonymous_page
    sign_in(signed_web, fake_github, "maria")
    page = signed_web.get(f"/runs/{run_id}").get_data(as_text=True)
    assert 'id="action-rerun-failed"' in page and 'id="action-cancel"' not in page
    form = {"csrf_token": _csrf(page), "action": "rerun-failed", "request_id": "req-12345678"}
    assert (
        signed_web.client.post(f"/runs/{run_id}/actions", data={**form, "csrf_token": "x"}).status_code == 400
    )
    evil = signed_web.client.post(
        f"/runs/{run_id}/actions", data=form, headers={"Origin": "https://evil.example"}
    )
    assert evil.status_code == 403
    done = signed_web.client.post(f"/runs/{run_id}/actions", data=form)
    assert done.status_code == 303 and "requested=action-" in done.headers["Location"]
    again = signed_web.client.post(f"/runs/{run_id}/actions", data=form)  # a double click
    assert again.status_code == 303
    stored = _actions(signed_web)
    assert len(stored) == 1
    delivery_id, stored_event = stored[0]
    assert delivery_id == f"action-{run_id}-req-12345678"
    assert stored_event["kind"] == "action" and stored_event["action"] == "rerun-failed"
    assert stored_event["sender"] == "maria" and stored_event["extra"] == {"run": str(run_id)}
    cancel = signed_web.client.post(f"/runs/{run_id}/actions", data={**form, "action": "cancel"})
    assert cancel.status_code == 409  # the run is over


def test_someone_without_write_access_may_not_act(signed_web: Web, fake_github: FakeGitHub, git_repo):
    fake_github.add_repo("octo/hello", git_repo)
    fake_github.permissions[("octo/hello", "reader")] = "read"
    run_id = add_run(
        signed_web.ctx,
        event(),
        instance=instance_name(signed_web),
        phase="running",
        jobs=(("build", "build", "running"),),
    )
    sign_in(signed_web, fake_github, "reader")
    page = signed_web.get(f"/runs/{run_id}").get_data(as_text=True)
    refused = signed_web.client.post(
        f"/runs/{run_id}/actions", data={"csrf_token": _csrf(page), "action": "cancel"}
    )
    assert refused.status_code == 403 and _actions(signed_web) == []


def test_the_api_acts_with_a_token_only(web: Web):
    run_id = add_run(web.ctx, phase="running", jobs=(("build", "build", "running"),))
    assert web.client.post(f"/api/runs/{run_id}/actions", json={"action": "cancel"}).status_code == 401
    bad = web.client.post(f"/api/runs/{run_id}/actions", json={"action": "explode"}, headers=web.admin())
    assert bad.status_code == 400 and "action" in bad.json["error"]
    ok = web.client.post(f"/api/runs/{run_id}/actions", json={"action": "cancel"}, headers=web.admin())
    assert ok.status_code == 202 and ok.json["run"] == run_id and ok.json["action"] == "cancel"
    assert _actions(web)[0][1]["sender"] == "admin"


def metric(web: Web, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in web.get("/metrics").get_data(as_text=True).splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
        if line.startswith(f"{name} ") and not wanted:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_deliveries_and_show_the_queue(make_settings):
    from service.context import build_context

    ctx = build_context(make_settings(github_webhook_secret="s3"))
    try:
        web = Web(ctx)
        labels = {"forge": "github", "event": "push", "outcome": "accepted"}
        before = metric(web, "forgeflow_deliveries_total", **labels)
        duplicate = {**labels, "outcome": "duplicate"}
        duplicate_before = metric(web, "forgeflow_deliveries_total", **duplicate)
        body = json.dumps(payloads.push("octo/hello", "https://github.com/octo/hello.git", "b" * 40)).encode()
        headers = signed_headers("github", body, "s3", "push", "metrics-1")
        assert web.client.post("/api/webhooks/github", data=body, headers=headers).status_code == 202
        assert web.client.post("/api/webhooks/github", data=body, headers=headers).status_code == 200
        assert web.client.post("/api/webhooks/github", data=body).status_code == 401
        assert metric(web, "forgeflow_deliveries_total", **labels) == before + 1
        assert (
            metric(web, "forgeflow_deliveries_total", forge="github", event="push", outcome="duplicate")
            == duplicate_before + 1
        )
        assert metric(web, "forgeflow_deliveries_total", forge="github", outcome="unauthorized") >= 1
        assert metric(web, "forgeflow_queue_depth", state="received") == 1
        assert metric(web, "forgeflow_queue_oldest_age_seconds") >= 0
        web.client.post("/api/webhooks/no-such-forge", data=b"{}")
        assert metric(web, "forgeflow_deliveries_total", forge="unknown", outcome="refused") >= 1
        assert 'forge="no-such-forge"' not in web.get("/metrics").get_data(as_text=True)
    finally:
        ctx.close()


def test_health_checks(web: Web):
    add_run(web.ctx)
    assert web.get("/livez").json == {"ok": True, "checks": {"process": "ok"}}
    ready = web.get("/readyz").json
    assert ready["ok"] and ready["checks"] == {"database": "ok", "broker": "ok"}
    assert web.get("/healthz").status_code == 200
    assert metric(web, "forgeflow_runs", phase="succeeded") == 1
    assert API_TOKEN  # the fixture's service token is not needed for health


def test_readyz_says_when_the_broker_is_unreachable(make_settings):
    from service.context import build_context

    ctx = build_context(make_settings(broker_url="redis://127.0.0.1:1/0"))
    try:
        ready = Web(ctx).get("/readyz")
        assert ready.status_code == 503 and ready.json["checks"]["broker"].startswith("unreachable")
        assert Web(ctx).get("/livez").status_code == 200
    finally:
        ctx.close()


def test_json_bodies_nested_past_the_parser_are_400_not_500(web: Web):
    run_id = add_run(web.ctx, phase="running", jobs=(("build", "build", "running"),))
    deep = b'{"action": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    json_headers = {**web.admin(), "Content-Type": "application/json"}
    for path in (f"/api/runs/{run_id}/actions", "/api/runs"):
        answer = web.client.post(path, data=deep, headers=json_headers)
        assert answer.status_code == 400, (path, answer.get_data()[:300])
    assert _actions(web) == []
