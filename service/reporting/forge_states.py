"""Which commit states each forge accepts, and how forgeflow's states map onto them.

The reporter shows each forge its own words (:func:`for_forge`) and reads them back into
forgeflow's (:func:`read_back`); the forge adapters post and read what they are given.

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

from dataclasses import replace

from service.forges.base import ReportedStatus, StatusReport

# forgeflow state -> the state each forge accepts, by the name of ogr's ``CommitStatus`` member
# (names, so that a process that only posts statuses need not import ogr)
STATE_MAPS: dict[str, dict[str, str]] = {
    "github": {
        "pending": "pending",
        "running": "pending",
        "success": "success",
        "failure": "failure",
        "error": "error",
    },
    "gitlab": {
        "pending": "pending",
        "running": "running",
        "success": "success",
        "failure": "failure",
        "error": "failure",
        "canceled": "canceled",
    },
    "forgejo": {
        "pending": "pending",
        "running": "pending",
        "success": "success",
        "failure": "failure",
        "error": "failure",
    },
    "pagure": {
        "pending": "pending",
        "running": "pending",
        "success": "success",
        "failure": "failure",
        "error": "error",
        "canceled": "canceled",
    },
}

# The words each forge uses for a state, when read back (GitLab says "failed").
FORGE_WORDS: dict[str, dict[str, str]] = {
    "github": {},
    "gitlab": {"failed": "failure", "canceled": "error", "skipped": "error", "created": "pending"},
    "forgejo": {"warning": "failure"},
    "pagure": {"canceled": "error"},
}

COMMON_WORDS = {"canceled": "error", "warning": "failure"}  # ogr's words, on any forge

CANCEL_WORDS = ("superseded", "cancelled", "canceled", "stopped")


def forge_state(kind: str, state: str, description: str) -> str:
    """The state to post on ``kind`` for forgeflow's ``state``."""
    states = STATE_MAPS[kind]
    if state == "error" and "canceled" in states and description.lower().startswith(CANCEL_WORDS):
        return states["canceled"]
    return states[state]


def forge_description(kind: str, state: str, description: str) -> str:
    """Where a forge lacks a state, the description says it (e.g. "running" on GitHub)."""
    mapped = forge_state(kind, state, description)
    text = description
    if mapped != state and state in ("running", "error") and not text.lower().startswith(state):
        text = f"{state}: {text}" if text else state
    return describe_state_change(state, text)


def describe_state_change(state: str, description: str) -> str:
    """A status description that fits every forge's limit (GitHub: 140 characters)."""
    text = description.strip() or state
    return text if len(text) <= 140 else text[:137] + "..."


def state_from_word(kind: str, word: str) -> str:
    """forgeflow's state for a state word a forge's API returned (unknown words: error)."""
    word = word.strip().lower()
    if word in ("pending", "running", "success", "failure", "error"):
        return word
    return FORGE_WORDS.get(kind, {}).get(word, COMMON_WORDS.get(word, "error"))


def for_forge(kind: str, report: StatusReport) -> StatusReport:
    """``report`` in the words forge ``kind`` accepts (the embedded forge takes forgeflow's own)."""
    if kind not in STATE_MAPS:
        return report
    return replace(
        report,
        state=forge_state(kind, report.state, report.description),
        description=forge_description(kind, report.state, report.description),
    )


def read_back(kind: str, status: ReportedStatus) -> ReportedStatus:
    """A status a forge shows, in forgeflow's states."""
    if kind not in STATE_MAPS:
        return status
    return replace(status, state=state_from_word(kind, status.state))
