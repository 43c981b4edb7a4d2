"""Conditions checked against the event's schema before any event arrives (``celcheck``)."""

from __future__ import annotations

from typing import Any

import pytest

from service.events import Comment, Event, EventKind, PullRequest, Repository
from service.jobs.celcheck import check
from service.jobs.event_schema import EVENT, FORGES, CelType, event_with_inputs
from service.jobs.expressions import event_context, parse_expression

REPO = Repository("octo", "hello", "https://github.com/octo/hello.git", default_branch="main")
EVENTS = [
    Event("github", EventKind.PUSH, REPO, "a" * 40, ref="refs/heads/main", branch="main"),
    Event(
        "gitlab",
        EventKind.PULL_REQUEST,
        REPO,
        "b" * 40,
        action="opened",
        pull_request=PullRequest(7, title="t", labels=("x",), fork=True, source_repo=REPO),
        changed_files=("src/a.py",),
    ),
    Event("forgejo", EventKind.COMMENT, REPO, "c" * 40, comment=Comment("1", "/forgeflow test", "bob")),
    Event("local", EventKind.MANUAL, REPO, "d" * 40, extra={"jobs": "a", "inputs": '{"target": "prod"}'}),
]
KINDS = {bool: "bool", int: "int", str: "string", list: "list", dict: "record"}


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    return KINDS[type(value)]


def schema_shape(cel: CelType) -> Any:
    if cel.kind == "record":
        return {name: schema_shape(t) for name, t in cel.fields}
    return {"map": "record"}.get(cel.kind, cel.kind)


@pytest.mark.parametrize("event", EVENTS, ids=[e.kind.value for e in EVENTS])
def test_the_schema_is_the_event_context_field_by_field(event: Event):
    context = shape(event_context(event))
    expected = schema_shape(EVENT)
    context["inputs"] = "record"  # a manual run's inputs: whatever the job file declares
    assert context == expected


def test_forges_are_the_forges_events_come_from():
    from handlers import HANDLERS

    assert set(FORGES) == set(HANDLERS)


def problems(text: str, inputs: dict[str, str] | None = None) -> list[str]:
    event = event_with_inputs(inputs or {})
    return [i.message for i in check(parse_expression(text), text, {"event": event}, True, status=True)]


@pytest.mark.parametrize(
    "text",
    [
        "!event.pull_request.draft && 'ci/full' in event.labels",
        "event.kind == 'manual' || event.branch == 'main'",
        "event.pull_request.labels.exists(l, l.startsWith('ci/'))",
        "size(event.labels) > 0 && event.labels[0] == 'x'",
        "event.ref.matches('^refs/tags/v') && has(event.pull_request.draft)",
        "event.files.exists(f, f.startsWith('docs/'))",
        "always() && event.branch == 'main'",
        "failure() || event.kind == 'schedule'",
        "event['kind'] == 'push' ? true : false",
        "int(event.pull_request.number) > 3 && type(event.pull_request.number) == int",
        "dyn(event.branch) == 1",
        "event.comment.body.contains('please') && event.sender != 'dependabot[bot]'",
        "event.labels.map(l, l + '!').exists(x, x == 'a!')",
        "event.pull_request.number in [1, 2]",
    ],
)
def test_conditions_that_work_pass(text: str):
    assert problems(text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("event.pull_request.drafts", "event.pull_request has no field 'drafts'; did you mean 'draft'?"),
        ("event.repo.name == 'x'", "event has no field 'repo'; did you mean 'repository'?"),
        ("event.pull_request.number == '7'", "is a number and '7' is text: they are never equal"),
        ("event.branch == main", "unknown name 'main': text is written in quotes: 'main'"),
        ("event.kind == 'pull-request'", "event.kind is never 'pull-request'; did you mean 'pull_request'?"),
        ("event.forge == 'gitea'", "event.forge is never 'gitea'; did you mean 'forgejo'?"),
        (
            "event.kind in ['push', 'pul_request']",
            "event.kind is never 'pul_request'; did you mean 'pull_request'?",
        ),
        ("event.branch.lower() == 'x'", "unknown method lower(): CEL has no lower()"),
        ("event.labels.startsWith('x')", "startsWith() tests text, but event.labels is a list of text"),
        ("event.branch", "event.branch is text, not true/false"),
        ("github.ref == 'main'", "unknown name 'github': forgeflow's conditions read event"),
        ("True", "CEL writes true and false in lower case"),
        ("event.pull_request.number + 1.0 > 2", "(a number) + 1.0 (a decimal number) cannot be computed"),
        ("!event.branch", "event.branch is text, not true/false; '!' turns true into false and back"),
        ("event.tag.startsWith(1)", "1 is a number, but startsWith() takes text"),
        ("failed()", "unknown function failed(): write failure()"),
        ("event.inputs.target == 'x'", "event.inputs has no field 'target': no job declares manual inputs"),
        ("1 in event.labels", "event.labels holds text, but 1 is a number"),
    ],
)
def test_mistakes_are_found_with_the_fix(text: str, expected: str):
    found = problems(text)
    assert any(expected in p for p in found), found


def test_manual_inputs_are_typed_as_declared():
    assert problems("event.inputs.target == 'prod'", {"target": "choice"}) == []
    assert problems("event.inputs.dry", {"dry": "boolean"}) == []
    assert any(
        "did you mean 'target'?" in p for p in problems("event.inputs.traget == 'x'", {"target": "string"})
    )
    assert any("never equal" in p for p in problems("event.inputs.dry == 'yes'", {"dry": "boolean"}))


def test_the_offset_points_at_the_field():
    text = "event.kind == 'push' && event.pull_request.drafts"
    (issue,) = check(parse_expression(text), text, {"event": EVENT}, True)
    assert text[issue.offset :].startswith("drafts")
