from __future__ import annotations

import json

import pytest

from service.commands.parse import commands_in
from service.events import EventKind
from tests.support.shared import shared_fixtures


def words(body: str, prefix: str = "/forgeflow") -> list[str]:
    return [c.text for c in commands_in(body, prefix)]


def test_one_command_per_line_with_arguments():
    body = "Thanks!\n/forgeflow test lint unit\n/forgeflow retest\r\n  /FORGEFLOW help  \nnot /forgeflow test"
    assert words(body) == ["test lint unit", "retest", "help"]


def test_the_bare_prefix_asks_for_help():
    assert words("/forgeflow") == ["help"]


def test_code_blocks_quotes_and_indented_code_are_not_commands():
    body = "\n".join(
        [
            "> /forgeflow test",
            "```",
            "/forgeflow cancel",
            "```",
            "~~~sh",
            "/forgeflow cancel",
            "~~~",
            "    /forgeflow cancel",
            "\t/forgeflow cancel",
            "/forgeflow ok-to-test",
        ]
    )
    assert words(body) == ["ok-to-test"]


def test_an_unclosed_fence_hides_the_rest():
    assert words("```\n/forgeflow test\n") == []


def test_the_prefix_is_configurable():
    assert words("/ci test\n/forgeflow test", prefix="/ci") == ["test"]


def test_real_comment_payloads_parse_into_commands_or_are_ignored():
    """GitHub issue_comment, GitLab Note Hook, Forgejo issue_comment and Pagure comments from
    the shared corpus: comments on pull requests become COMMENT events whose bodies parse."""
    from handlers import HANDLERS
    from handlers.base import Delivery, Ignored, Parsed

    root = shared_fixtures() / "webhooks"
    if not root.is_dir():
        pytest.skip(f"no fixtures at {root}")
    seen = 0
    for forge, pattern in (
        ("github", "issue_comment.*.json"),
        ("gitlab", "*note*.json"),
        ("forgejo", "issue_comment.*.json"),
        ("pagure", "pull-request.comment*.json"),
    ):
        index = json.loads((root / forge / "index.json").read_text())
        for path in sorted((root / forge).glob(pattern)):
            header = {
                "github": "X-GitHub-Event",
                "gitlab": "X-Gitlab-Event",
                "forgejo": "X-Gitea-Event",
                "pagure": "X-Pagure-Topic",
            }[forge]
            result = HANDLERS[forge].parse(Delivery(path.read_bytes(), {header: index.get(path.name, "")}))
            assert isinstance(result, Parsed | Ignored), path
            if isinstance(result, Parsed) and result.event.kind is EventKind.COMMENT:
                assert result.event.comment is not None and result.event.pull_request is not None
                commands_in(result.event.comment.body, "/packit")  # never raises
                seen += 1
    assert seen >= 10
