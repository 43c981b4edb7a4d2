"""Which commit states each forge accepts, and how forgeflow's states map onto them.

forgeflow's states are pending, running, success, failure and error. Checked against the forges'
own APIs (and what ogr lets through):

- GitHub: ``pending``, ``success``, ``failure``, ``error``. No running: it is ``pending`` with a
  description saying "running".
- GitLab (``POST /projects/:id/statuses/:sha``): ``pending``, ``running``, ``success``,
  ``failed``, ``canceled``, ``skipped``; ``error`` and ``warning`` are refused (400). An error
  is ``failed`` with a description saying "error" -- or ``canceled`` when forgeflow stopped the
  job (superseded, cancelled). GitLab answers 400 "Cannot transition status via :run from
  :running" when a state is posted twice; the forge modules treat that as done.
- Forgejo/Gitea: ``pending``, ``success``, ``error``, ``failure``, ``warning``. No running or
  canceled. ``error`` would be accepted, but ogr cannot read an ``error`` status back (its
  Forgejo state table lacks it), so errors are posted as ``failure`` with an "error:" description.
- Pagure (commit flags and pull-request flags alike, ``FLAG_STATUSES_LABELS``): ``success``,
  ``failure``, ``error``, ``pending``, ``canceled``. No running.
"""

from __future__ import annotations

from ogr.abstract import CommitStatus

from service.forges.base import describe_state_change

# forgeflow state -> the CommitStatus each forge accepts
STATE_MAPS: dict[str, dict[str, CommitStatus]] = {
    "github": {
        "pending": CommitStatus.pending,
        "running": CommitStatus.pending,
        "success": CommitStatus.success,
        "failure": CommitStatus.failure,
        "error": CommitStatus.error,
    },
    "gitlab": {
        "pending": CommitStatus.pending,
        "running": CommitStatus.running,
        "success": CommitStatus.success,
        "failure": CommitStatus.failure,
        "error": CommitStatus.failure,
        "canceled": CommitStatus.canceled,
    },
    "forgejo": {
        "pending": CommitStatus.pending,
        "running": CommitStatus.pending,
        "success": CommitStatus.success,
        "failure": CommitStatus.failure,
        "error": CommitStatus.failure,
    },
    "pagure": {
        "pending": CommitStatus.pending,
        "running": CommitStatus.pending,
        "success": CommitStatus.success,
        "failure": CommitStatus.failure,
        "error": CommitStatus.error,
        "canceled": CommitStatus.canceled,
    },
}

# The words each forge uses for a state, when read back (GitLab says "failed").
FORGE_WORDS: dict[str, dict[str, str]] = {
    "github": {},
    "gitlab": {"failed": "failure", "canceled": "error", "skipped": "error", "created": "pending"},
    "forgejo": {"warning": "failure"},
    "pagure": {"canceled": "error"},
}

CANCEL_WORDS = ("superseded", "cancelled", "canceled", "stopped")


def forge_state(kind: str, state: str, description: str) -> CommitStatus:
    """The state to post on ``kind`` for forgeflow's ``state``."""
    states = STATE_MAPS[kind]
    if state == "error" and "canceled" in states and description.lower().startswith(CANCEL_WORDS):
        return states["canceled"]
    return states[state]


def forge_description(kind: str, state: str, description: str) -> str:
    """Where a forge lacks a state, the description says it (e.g. "running" on GitHub)."""
    mapped = forge_state(kind, state, description).name
    text = description
    if mapped != state and state in ("running", "error") and not text.lower().startswith(state):
        text = f"{state}: {text}" if text else state
    return describe_state_change(state, text)


def reverse_state(value: CommitStatus) -> str:
    """forgeflow's state for one ogr reads back."""
    return {
        CommitStatus.pending: "pending",
        CommitStatus.running: "running",
        CommitStatus.success: "success",
        CommitStatus.failure: "failure",
        CommitStatus.error: "error",
        CommitStatus.canceled: "error",
        CommitStatus.warning: "failure",
    }[value]


def state_from_word(kind: str, word: str) -> str:
    """forgeflow's state for a state word a forge's API returned (unknown words: error)."""
    word = word.strip().lower()
    if word in ("pending", "running", "success", "failure", "error"):
        return word
    return FORGE_WORDS.get(kind, {}).get(word, "error")
