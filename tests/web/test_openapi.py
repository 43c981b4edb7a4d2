"""The OpenAPI document: valid OpenAPI 3.1, every endpoint it names answers what it says (checked
against the document itself), and fuzzed query parameters never get a 5xx."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from service.executors.local.store import LocalStore
from service.web.openapi import ENDPOINTS
from tests.support.runs import MANIFEST_NEEDS, add_run, event
from tests.web.conftest import Web


def test_the_document_is_valid_openapi_3_1(web: Web):
    response = web.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.json
    validate(document)
    assert document["openapi"].startswith("3.1")
    names = {p["name"] for p in document["paths"]["/api/runs"]["get"]["parameters"]}
    assert {"repo", "branch", "pr", "sha", "state", "event", "since", "until", "limit", "cursor"} <= names


def _check(document: dict[str, Any], path: str, method: str, status: int, body: Any) -> None:
    operation = document["paths"][path][method]
    assert str(status) in operation["responses"], f"{method} {path}: {status} is not documented"
    content = operation["responses"][str(status)].get("content")
    if content is None:
        return
    schema = {**content["application/json"]["schema"], "components": document["components"]}
    errors = sorted(Draft202012Validator(schema).iter_errors(body), key=str)
    assert not errors, f"{method} {path} {status}: {errors[0].message} at {list(errors[0].path)}"


def _prepared(web: Web) -> dict[str, str]:
    """A run with a log, so every endpoint has something to show."""
    ctx = web.ctx
    run_id = add_run(
        ctx,
        event(sha="ab" * 20),
        workflow="wf-9",
        phase="failed",
        manifest=MANIFEST_NEEDS,
        jobs=(("build", "build", "success"), ("test", "test", "failure")),
    )
    path = LocalStore(ctx.settings.data_dir.resolve()).log_path("forgeflow", "wf-9", "test")
    path.parent.mkdir(parents=True)
    path.write_text("2026-01-01T12:00:00.000000Z ==> test\n2026-01-01T12:00:00.500000Z failed!\n")
    return {"run_id": str(run_id), "task": "test", "repo": "octo/hello", "sha": "abab"}


VALID_BODIES: dict[tuple[str, str], Any] = {
    ("post", "/api/runs/{run_id}/actions"): {"action": "rerun-failed"},
    ("post", "/api/runs"): {"forge": "local", "repo": "nobody/nothing", "ref": "main"},
}


def test_every_documented_endpoint_answers_as_documented(web: Web):
    document = web.get("/api/openapi.json").json
    values = _prepared(web)
    exercised = 0
    for endpoint in ENDPOINTS:
        path = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], endpoint.path)
        headers = web.admin() if endpoint.auth else {}
        if endpoint.method == "get":
            response = web.get(path, headers=headers)
        else:
            body = VALID_BODIES[(endpoint.method, endpoint.path)]
            response = web.client.post(path, json=body, headers=headers)
        assert response.status_code < 500 or endpoint.path == "/readyz", (path, response.data)
        _check(document, endpoint.path, endpoint.method, response.status_code, response.json)
        # and a request the endpoint must refuse, answered as documented too
        refused = web.get(path + "?unknown=1") if endpoint.method == "get" else web.client.post(path, json=[])
        if refused.status_code != 200:
            _check(document, endpoint.path, endpoint.method, refused.status_code, refused.json)
        exercised += 1
    assert exercised == len(ENDPOINTS) == sum(len(p) for p in document["paths"].values())


QUERY_NAMES = sorted({name for e in ENDPOINTS if e.query for name in e.query.model_fields})
text_values = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"-?[0-9]{1,30}(\.[0-9]+)?(e[0-9]+)?", fullmatch=True),
    st.sampled_from(["", "%", "_", "'", "\x00", "r1", "r0", "2026-01-01", "9" * 400, "true", "null"]),
)
queries = st.lists(st.tuples(st.sampled_from([*QUERY_NAMES, "x"]), text_values), max_size=4)
paths = st.sampled_from(
    [
        "/api/runs",
        "/api/runs/{run_id}",
        "/api/runs/{run_id}/jobs/test/log",
        "/runs",
        "/runs/{run_id}",
        "/runs/{run_id}/jobs/{run_id}",
        "/runs/{run_id}/logs/test",
        "/repos/{run_id}/{run_id}",
        "/repos/github/{run_id}/-/pull/{run_id}",
        "/repos/github/octo/hello/-/commit/{run_id}",
        "/api/statuses/{run_id}/{run_id}",
    ]
)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(path=paths, query=queries, run_id=st.one_of(st.just("1"), st.text(min_size=1, max_size=12)))
def test_fuzzed_query_parameters_never_get_a_5xx(
    web: Web, path: str, query: list[tuple[str, str]], run_id: str
):
    if not getattr(web, "prepared", False):
        _prepared(web)
        web.prepared = True
    from urllib.parse import quote, urlencode

    target = path.replace("{run_id}", quote(run_id, safe=""))
    response = web.client.get(target, query_string=urlencode(query))
    assert response.status_code < 500, (target, query, response.data[:300])
