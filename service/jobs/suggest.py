""" "Did you mean ...?": the closest known word to a misspelt one, and advice for the keys and
events people bring from other CI systems (``runs-on``, ``script``, ``workflow_dispatch``).

Closeness is the optimal-string-alignment distance (Levenshtein plus swapped neighbours, so
``biuld`` is one edit from ``build``), compared case-insensitively and with ``-``/``_`` alike.
"""

from __future__ import annotations

from collections.abc import Iterable

# Keys of GitHub Actions, GitLab CI and others, with what to write in a forgeflow job instead.
FOREIGN_KEYS: dict[str, str] = {
    "runs-on": "forgeflow runs every job in a container: choose it with image: (e.g. image: fedora:41)",
    "runs_on": "forgeflow runs every job in a container: choose it with image: (e.g. image: fedora:41)",
    "container": "write the image directly: image: NAME",
    "script": "write the commands as steps: steps: [make test] (or steps: [{run: make test}])",
    "before_script": "put those commands first in steps:",
    "after_script": "put those commands last in steps:",
    "commands": "write the commands as steps: steps: [make test]",
    "stage": "forgeflow has no stages: order jobs with needs: [other-job]",
    "stages": "forgeflow has no stages: order jobs with needs: [other-job]",
    "depends_on": "write needs: [other-job]",
    "allow_failure": "write continue-on-error: true",
    "allow-failure": "write continue-on-error: true",
    "schedule": "schedules are events: on: {schedule: [{cron: '0 3 * * *', branch: main}]}",
    "inputs": "manual inputs go under on: on: {manual: {inputs: {NAME: {type: string}}}}",
    "depends-on": "write needs: [other-job]",
    "dependencies": "write needs: [other-job] (its artifacts come along; {job: other-job, "
    "artifacts: false} when they should not)",
    "requires": "write needs: [other-job]",
    "after": "write needs: [other-job]",
    "variables": "write env: {NAME: value}",
    "environment": "write env: {NAME: value}",
    "vars": "write env: {NAME: value}",
    "strategy": "write the matrix directly under the job: matrix: {python: ['3.11', '3.12']}",
    "timeout-minutes": "write timeout: 30m",
    "timeout_minutes": "write timeout: 30m",
    "when": "write the condition as if: (a CEL expression over event)",
    "rules": "filter with on:, branches:, paths: and if:",
    "only": "filter with branches: (or on: {tag: [...]} for tags)",
    "except": "filter with branches-ignore:",
    "trigger": "write on: (push, tag, pull_request, comment, release, manual)",
    "triggers": "write on: (push, tag, pull_request, comment, release, manual)",
    "events": "write on: (push, tag, pull_request, comment, release, manual)",
    "name": "the job's name is its key under jobs:; steps can have a name: ({name: test, run: pytest})",
    "run": "a job runs steps: steps: [{run: make}] (or steps: [make])",
    "shell": "every step runs with sh -e; call another shell in the step: run: bash -c '...'",
    "working-directory": "change directory in the step: run: cd sub && make",
    "permissions": "forgeflow jobs get no forge token; the service config decides what a job may use",
    "on_push": "write on: push",
    "parallel": "write a matrix: matrix: {shard: ['1', '2', '3']}",
    "interruptible": "write concurrency: {group: ..., cancel-in-progress: true} at the top of the file",
}

# Keys people give a step: a step is {run: COMMANDS, name: TITLE} and nothing else.
FOREIGN_STEP_KEYS: dict[str, str] = {
    "uses": "forgeflow checks the commit out before the first step and runs no GitHub Actions: "
    "write the commands with run:",
    "with": "steps take no inputs; templates do: set uses: and with: on the job",
    "script": "a step's commands go in run: (- run: make test)",
    "command": "a step's commands go in run: (- run: make test)",
    "commands": "a step's commands go in run: (- run: make test)",
    "cmd": "a step's commands go in run: (- run: make test)",
    "sh": "a step's commands go in run: (- run: make test)",
    "shell": "every step runs with sh -e; call another shell in run: (run: bash -c '...')",
    "env": "steps have no env:; set env: on the job",
    "if": "steps have no if:; test in the commands (run: if [ ... ]; then ...; fi) or split the job",
    "image": "a job has one image for all its steps: set image: on the job",
    "working-directory": "change directory in the step: run: cd sub && make",
    "timeout-minutes": "timeouts are per job: timeout: 30m on the job",
    "timeout": "timeouts are per job: timeout: 30m on the job",
    "continue-on-error": "continue-on-error: true belongs to the job (its failure then blocks nothing)",
    "id": "steps have no id",
}

# Top-level keys of other systems (and job keys written one level too high).
FOREIGN_TOP_KEYS: dict[str, str] = {
    "on": "forgeflow's on: belongs to each job: jobs: {build: {on: [push], steps: [...]}}",
    "name": "a job file has no name: its jobs are named by their keys under jobs:",
    "env": "environment for every job goes under defaults: defaults: {env: {NAME: value}}",
    "variables": "environment for every job goes under defaults: defaults: {env: {NAME: value}}",
    "image": "the image for every job goes under defaults: defaults: {image: NAME}",
    "timeout": "the timeout for every job goes under defaults: defaults: {timeout: 30m}",
    "stages": "forgeflow has no stages: order jobs with needs: [other-job]",
    "include": "share job bodies with templates: uses: NAME (.forgeflow/templates/NAME.yaml)",
    "steps": "steps belong to a job: jobs: {build: {steps: [make]}}",
    "workflow": "write conditions per job with on:, branches: and if:",
    "permissions": "forgeflow jobs get no forge token; the service config decides what a job may use",
}

# Events that other systems name differently.
FOREIGN_EVENTS: dict[str, str] = {
    "pull-request": "pull_request",
    "pullrequest": "pull_request",
    "pr": "pull_request",
    "pull_request_target": "pull_request",
    "merge_request": "pull_request",
    "merge_request_event": "pull_request",
    "mr": "pull_request",
    "workflow_dispatch": "manual",
    "web": "manual",
    "api": "manual",
    "issue_comment": "comment",
    "tags": "tag",
    "create": "tag",
    "releases": "release",
    "pushes": "push",
    "cron": "schedule",
    "nightly": "schedule",
    "commit": "push",
}


def distance(a: str, b: str, limit: int = 3) -> int:
    """Edits (insert, delete, change, swap of neighbours) from ``a`` to ``b``; ``limit + 1``
    as soon as it is known to be more than ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


def _normal(word: str) -> str:
    return word.lower().replace("-", "_")


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``word`` when it is close enough to be a slip, else None."""
    target = _normal(word)
    best: tuple[int, str] | None = None
    for candidate in dict.fromkeys(candidates):
        if candidate == word:
            continue
        normal = _normal(candidate)
        if normal == target:
            return candidate
        limit = 1 if len(target) <= 4 else 2 if len(target) <= 8 else 3
        found = distance(target, normal, limit)
        if found > limit and len(target) >= 4 and (normal.startswith(target) or target.startswith(normal)):
            found = limit  # branch -> branches, pull -> pull_request
        if found <= limit and (best is None or found < best[0]):
            best = (found, candidate)
    return best[1] if best else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'branches'?"`` or ``""``."""
    found = closest(word, candidates)
    return f"; did you mean {found!r}?" if found else ""


def one_of(candidates: Iterable[str], limit: int = 12) -> str:
    """``'a', 'b' or 'c'``, shortened past ``limit`` names."""
    names = [repr(c) for c in dict.fromkeys(candidates)]
    if len(names) > limit:
        names = [*names[:limit], "..."]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " or " + names[-1]
