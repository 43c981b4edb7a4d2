"""``POST /api/runs`` checks its ``wait`` the way it checks every other field."""

from __future__ import annotations

import pytest

from service.web.manual import parse_body

BODY = {"forge": "github", "repo": "octo/hello", "ref": "main"}


@pytest.mark.parametrize("wait", [0, 5, 12.5, 30])
def test_a_wait_of_up_to_thirty_seconds_is_taken(wait: float):
    fields, problem = parse_body({**BODY, "wait": wait})
    assert problem == "" and fields is not None and fields["wait"] == wait


@pytest.mark.parametrize("wait", [-1, 31, "10", True, [1]])
def test_another_wait_is_a_clear_400(wait: object):
    fields, problem = parse_body({**BODY, "wait": wait})
    assert fields is None and problem == "wait is a number of seconds, at most 30"


@pytest.mark.parametrize(
    ("repo", "ref"),
    [
        (
            "victim/repo/../../mine/repo",
            "main",
        ),  # the API path (and octo/* policies) would read it as another repository
        ("octo/..", "main"),
        ("./hello", "main"),
        ("octo/hello", "ma\x00in"),
        ("octo/hello", "main\x1b[2J"),
        ("octo/hello", "--upload-pack=touch pwned"),
        ("octo/hello", "main/../../x"),
        ("octo/hello", "main@{1}"),
        ("octo/hello", "refs/heads/.hidden"),
        ("octo/hello", "main.lock"),
        ("octo/hello", "refs//heads"),
    ],
)
def test_a_repository_or_ref_that_is_not_a_name_is_a_400(repo: str, ref: str):
    fields, problem = parse_body({**BODY, "repo": repo, "ref": ref})
    assert fields is None and problem.startswith(("repo must be", "ref must be")), problem


@pytest.mark.parametrize("ref", ["main", "refs/tags/v1.2.3", "release/1.x", "a" * 40, "feature/ünïcode"])
def test_refs_people_use_are_taken(ref: str):
    fields, problem = parse_body({**BODY, "repo": "group/sub.group/my_repo-1", "ref": ref})
    assert problem == "" and fields is not None


def test_an_input_with_a_nul_is_a_400_and_other_text_is_taken():
    for inputs in ({"target": "pro\x00d"}, {"ta\x00rget": "prod"}):
        fields, problem = parse_body({**BODY, "inputs": inputs})
        assert fields is None and problem.startswith("inputs must be"), problem
    fields, problem = parse_body({**BODY, "inputs": {"notes": "line 1\nline 2\tü", "dry": True}})
    assert problem == "" and fields is not None
