"""The JSON Schema of ``.forgeflow.yaml`` for editors: ``forgeflow schema`` and the file
``config/schema/forgeflow.schema.json`` (``make schema``).

Generated from the job model, then made useful in an editor: JSON Schema draft-07 (what
yaml-language-server, used by VS Code, Neovim, Helix and others, understands), a description on
every key for hover help, and job names constrained as the loader constrains them. Point an
editor at it with a first line ``# yaml-language-server: $schema=.forgeflow/schema.json`` (a
path relative to the job file: ``forgeflow init`` writes both) or the editor's ``yaml.schemas``
setting; the README's "Editors" section says how.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMA_ID = "https://forgeflow.dev/schema/forgeflow.schema.json"
SCHEMA_FILE = Path(__file__).resolve().parents[2] / "config" / "schema" / "forgeflow.schema.json"
DRAFT = "http://json-schema.org/draft-07/schema#"

# Hover help, per model (its $defs name; "" is the file itself) and key.
KEY_DOCS: dict[str, dict[str, str]] = {
    "": {
        "version": "Always 1.",
        "defaults": "Values every job starts from: image, timeout, env, retries, resources.",
        "concurrency": "A group name (${{ }} with event allowed); runs of one group run one at a time.",
        "jobs": "The jobs, by name. Each job is one pod (each matrix cell one pod) with its own status.",
    },
    "Defaults": {
        "image": "The container image jobs run in unless they set image:.",
        "timeout": "How long a job may run: 90 (seconds), '30m', '1h30m'.",
        "env": "Environment variables of every job; write values in quotes ('3.10', 'yes').",
        "retries": "Retries of every job: 2, or {limit, backoff, factor, max-backoff, policy}.",
        "resources": "CPU and memory of every job: {cpu: 2, memory: 4Gi}.",
    },
    "JobSpec": {
        "uses": "A template: .forgeflow/templates/NAME.yaml in the repository, or one from the "
        "service config.",
        "with": "The template's inputs: {name: value}. Write versions in quotes: '3.10'.",
        "on": "Events that start the job: push, tag, pull_request, comment, release, manual. "
        "A name, a list, or a mapping with each event's filters. Default: [push, pull_request].",
        "branches": "Globs over the pushed branch or the pull request's target branch.",
        "branches-ignore": "Globs of branches the job does not run for.",
        "tags": "Globs over the tag (tag and release events).",
        "paths": "Run only when a changed file matches one of these globs ('src/**').",
        "paths-ignore": "Skip the job when every changed file matches these globs.",
        "labels": "Pull requests only: one of the request's labels must match.",
        "if": 'A CEL condition over event, e.g. "!event.pull_request.draft". No ${{ }}.',
        "needs": "Jobs that must succeed first: [build, lint].",
        "matrix": "Axes of values, one job per combination: {python: ['3.11', '3.12']}. "
        "Quote versions: 3.10 unquoted is the number 3.1.",
        "fail-fast": "Once a cell of the matrix fails, start no other cell (default true).",
        "max-parallel": "At most this many cells of the matrix at once.",
        "image": "The container image the steps run in; ${{ matrix.NAME }} allowed.",
        "env": "Environment variables of the steps; write values in quotes ('3.10', 'yes').",
        "timeout": "How long the job may run: 90 (seconds), '30m', '1h30m'.",
        "retries": "2, or {limit, backoff: 10s, factor: 2, max-backoff: 5m, policy}.",
        "resources": "{cpu: 2, memory: 4Gi} (requests) or {requests: {...}, limits: {...}}.",
        "secrets": "Kubernetes Secret names whose keys become environment variables.",
        "artifacts": "Paths of the checkout kept after the job: [dist, {name: coverage, path: cov.xml}].",
        "steps": "Scripts run in order with sh -e: [make, {name: test, run: pytest}].",
        "argo": "Argo templates run directly: {entrypoint, templates}.",
        "workflowTemplate": "An Argo WorkflowTemplate to run: NAME or {name, template, cluster-scope}.",
        "outputs": "Names a step may write as name=value lines to $FORGEFLOW_OUTPUT; jobs that need "
        "this one read them as ${{ needs.JOB.outputs.NAME }} in env values.",
        "cache": "{key, paths, restore-keys}: restored before the steps, saved after them when the "
        "key missed. The key may use ${{ hashFiles('requirements.txt') }}.",
        "services": "Containers next to the job's, on localhost: {db: {image: postgres:16, env: {...}, "
        "ports: [5432]}}.",
        "continue-on-error": "The job's failure is reported but fails neither the run nor the jobs "
        "that need it.",
        "arguments": "Parameters of argo and workflowTemplate jobs; ${{ }} with event allowed.",
    },
    "Step": {
        "run": "The commands, run with sh -e. Event data comes from $FORGEFLOW_* variables.",
        "name": "The step's title in logs (default: its first line).",
    },
    "Triggers": {
        "push": "Pushes to a branch: {branches, branches-ignore, paths, paths-ignore}.",
        "tag": "Pushed tags: a list of globs (['v*']) or {tags: [...]}.",
        "pull_request": "Pull (merge) requests: {types, branches, branches-ignore, paths, "
        "paths-ignore, labels}.",
        "comment": "A comment command: {command: WORD} runs on '/forgeflow WORD'.",
        "release": "A published release.",
        "manual": "A manual run (API or forgeflow trigger): {} or {inputs: {NAME: {type, options, "
        "default, required}}}.",
        "schedule": "Cron times (UTC): [{cron: '0 3 * * *', branch: main}].",
        "merge_group": "GitHub's merge queue: the merge group's head commit; {branches, branches-ignore}.",
    },
    "PullRequestTrigger": {
        "types": "opened, synchronize, reopened, closed, labeled, ready_for_review "
        "(default: the first three).",
    },
    "Retries": {
        "limit": "How many times to retry (1-10).",
        "backoff": "Wait before the first retry ('10s').",
        "factor": "Each wait is this many times the one before.",
        "max-backoff": "The longest wait ('5m').",
        "policy": "Always, OnFailure, OnError or OnTransientError.",
    },
    "Concurrency": {
        "group": "Runs with the same group run one at a time (per repository).",
        "cancel-in-progress": "A new run of the group stops the one in progress.",
    },
}


# Hover help of the kinds of values ($defs), replacing the models' docstrings (written for
# developers). A key whose value is one of these shows this text in editors.
DEF_DOCS: dict[str, str] = {
    "JobSpec": "A job: when it runs (on, branches, paths, if, needs), how many (matrix) and what "
    "(image and steps, a template with uses, or Argo).",
    "Defaults": "Values every job starts from.",
    "Triggers": KEY_DOCS["JobSpec"]["on"],
    "PushTrigger": "Filters of pushes: branches, branches-ignore, paths, paths-ignore.",
    "TagTrigger": "Tag globs: ['v*'] or {tags: ['v*']}.",
    "PullRequestTrigger": "Filters of pull requests: types, branches (the target), paths, labels.",
    "CommentTrigger": "{command: WORD}: runs when someone with write access comments '/forgeflow WORD'.",
    "EmptyTrigger": "No filters: {}.",
    "Step": "A script run with sh -e: a string, or {name, run}.",
    "Matrix": KEY_DOCS["JobSpec"]["matrix"],
    "Retries": KEY_DOCS["JobSpec"]["retries"],
    "Resources": KEY_DOCS["JobSpec"]["resources"],
    "Amounts": "{cpu: 2, memory: 4Gi}: Kubernetes quantities.",
    "Artifact": "A path of the checkout kept after the job, or {name, path}.",
    "ArgoJob": KEY_DOCS["JobSpec"]["argo"],
    "WorkflowTemplateRef": KEY_DOCS["JobSpec"]["workflowTemplate"],
    "Concurrency": "A group name, or {group, cancel-in-progress}.",
    "Need": "A job that must finish first: NAME, or {job, artifacts: false, optional: true}.",
    "Cache": KEY_DOCS["JobSpec"]["cache"],
    "Service": "A service container: {image, env, ports, command, args}.",
    "ManualTrigger": "Manual runs, with typed inputs: {inputs: {NAME: {type: choice, options: [a, b]}}}.",
    "ManualInput": "{type: string/boolean/choice, options, default, required, description}.",
    "ScheduleEntry": "{cron: '0 3 * * *', branch: main}: five cron fields (UTC); the branch's head runs.",
}


DEF_TITLES = {"JobSpec": "job", "Triggers": "on", "Step": "step", "Defaults": "defaults"}


def _describe(schema: dict[str, Any], docs: dict[str, str]) -> None:
    for key, prop in (schema.get("properties") or {}).items():
        text = docs.get(key)
        if text and isinstance(prop, dict):
            if "$ref" in prop:  # draft-07 ignores the siblings of $ref
                schema["properties"][key] = {"allOf": [{"$ref": prop.pop("$ref")}], **prop}
            schema["properties"][key]["description"] = text


def job_file_schema() -> dict[str, Any]:
    """The JSON Schema of ``.forgeflow.yaml``, generated from the model (``make schema``)."""
    from service.jobs.model import JOB_NAME, JobFile

    schema = JobFile.model_json_schema(by_alias=True)
    _describe(schema, KEY_DOCS[""])
    for name, definition in schema.get("$defs", {}).items():
        definition.pop("description", None)
        definition["title"] = DEF_TITLES.get(name, definition.get("title", name))
        if name in DEF_DOCS:
            definition["description"] = DEF_DOCS[name]
        _describe(definition, KEY_DOCS.get(name, {}))
    jobs = schema["properties"]["jobs"]
    jobs["propertyNames"] = {"pattern": JOB_NAME.pattern}
    return {
        "$schema": DRAFT,
        "$id": SCHEMA_ID,
        "title": "forgeflow job file (.forgeflow.yaml)",
        "description": "Check it with `forgeflow validate`; the README's 'The job file' is the reference.",
        **{k: v for k, v in schema.items() if k not in ("title", "description")},
    }


def schema_text() -> str:
    return json.dumps(job_file_schema(), indent=2, sort_keys=True) + "\n"
