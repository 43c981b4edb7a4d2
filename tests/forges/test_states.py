"""forgeflow's states in each forge's words, and back."""

from __future__ import annotations

import pytest
from ogr.abstract import CommitStatus

from service.reporting.forge_states import STATE_MAPS, forge_description, forge_state, state_from_word

# What each forge's API accepts (GitLab's words are mapped from ogr's by the GitLab module).
ACCEPTED = {
    "github": {CommitStatus.pending, CommitStatus.success, CommitStatus.failure, CommitStatus.error},
    "gitlab": {
        CommitStatus.pending,
        CommitStatus.running,
        CommitStatus.success,
        CommitStatus.failure,
        CommitStatus.canceled,
    },
    "forgejo": {
        CommitStatus.pending,
        CommitStatus.success,
        CommitStatus.failure,
    },  # "error": ogr can't read it
    "pagure": {
        CommitStatus.pending,
        CommitStatus.success,
        CommitStatus.failure,
        CommitStatus.error,
        CommitStatus.canceled,
    },
}


@pytest.mark.parametrize("kind", sorted(STATE_MAPS))
@pytest.mark.parametrize("state", ["pending", "running", "success", "failure", "error"])
def test_every_state_maps_to_one_the_forge_accepts(kind: str, state: str):
    assert CommitStatus[forge_state(kind, state, "")] in ACCEPTED[kind]
    assert CommitStatus[forge_state(kind, state, "superseded by abc")] in ACCEPTED[kind]


def test_where_a_state_is_missing_the_description_says_it():
    assert forge_description("github", "running", "running") == "running"
    assert forge_description("forgejo", "error", "no pod") == "error: no pod"
    assert forge_description("gitlab", "error", "no pod") == "error: no pod"
    assert forge_description("gitlab", "running", "running") == "running"
    assert forge_description("pagure", "error", "no pod") == "no pod"
    assert len(forge_description("github", "failure", "x" * 500)) == 140


def test_stopped_jobs_are_canceled_where_the_forge_has_it():
    assert forge_state("gitlab", "error", "superseded by abc") == CommitStatus.canceled.name
    assert forge_state("pagure", "error", "cancelled by alice") == CommitStatus.canceled.name
    assert forge_state("github", "error", "superseded by abc") == CommitStatus.error.name
    assert forge_state("forgejo", "error", "superseded by abc") == CommitStatus.failure.name


@pytest.mark.parametrize(
    ("kind", "word", "state"),
    [
        ("gitlab", "failed", "failure"),
        ("gitlab", "canceled", "error"),
        ("gitlab", "running", "running"),
        ("forgejo", "warning", "failure"),
        ("forgejo", "error", "error"),
        ("pagure", "canceled", "error"),
        ("pagure", "something new", "error"),
    ],
)
def test_forge_words_read_back(kind: str, word: str, state: str):
    assert state_from_word(kind, word) == state
