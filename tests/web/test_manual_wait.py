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
