"""The job-file commands: ``forgeflow validate``, ``forgeflow schema`` and ``forgeflow trigger``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def cmd_schema(args: argparse.Namespace) -> int:
    from service.cli.schema import schema_text

    if args.output:
        target = Path(args.output)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(schema_text(), encoding="utf-8")
        print(f"wrote {target}; point your editor at it with a first line in the job file:")
        print(f"# yaml-language-server: $schema={target}")
        return 0
    sys.stdout.write(schema_text())
    return 0


def template_names(root: Path, settings: Any) -> tuple[str, ...]:
    """The templates a checkout and the service config offer (for "did you mean")."""
    from service.jobs.templates import TEMPLATE_DIR

    folder = root / TEMPLATE_DIR
    found = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
    return tuple(dict.fromkeys([*found, *settings.templates]))


def excerpt(file: str, line: int, column: int, sources: dict[str, list[str]]) -> list[str]:
    """The line a problem is on, with a caret under its column."""
    if file not in sources:
        try:
            sources[file] = Path(file).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            sources[file] = []
    lines = sources[file]
    if not 0 < line <= len(lines):
        return []
    text = lines[line - 1].replace("\t", " ")
    gutter = f"{line:>6} | "
    return [gutter + text, " " * (len(gutter) - 2) + "| " + " " * max(column - 1, 0) + "^"]


def report_problems(problems: list[Any], main_file: str, out: Any) -> None:
    """Every problem on its own line, in the order given; YAML syntax errors with the line."""
    sources: dict[str, list[str]] = {}
    for problem in problems:
        print(problem, file=out)
        if problem.syntax:
            for line in excerpt(problem.file, problem.line, problem.column, sources):
                print(line, file=out)
    stopped = [p for p in problems if p.syntax and p.file == main_file]
    if stopped:
        print(
            f"{main_file}: the YAML could not be read past line {stopped[0].line}: fix this, then run "
            "forgeflow validate again to check the rest",
            file=out,
        )
    else:
        count = len(problems)
        print(f"{main_file}: {count} problem{'s' if count != 1 else ''}", file=out)


def cmd_validate(args: argparse.Namespace, settings: Any) -> int:
    """Every problem of a job file, one ``file:line:column: key: message`` line each."""
    from service.cli.checkout import CheckoutFiles
    from service.jobs.loader import JobFileError, load_job_file
    from service.runs.recipe import job_limits, repository_templates

    path = Path(args.path)
    if path.is_dir():
        path = path / settings.job_file
    try:
        text = path.read_bytes()
    except OSError as exc:
        hint = " (forgeflow init writes a starter job file)" if not path.exists() else ""
        print(f"{path}: cannot read: {exc.strerror}{hint}", file=sys.stderr)
        return 2
    root = path.parent  # the checkout: its .forgeflow/templates hold the templates
    try:
        templates = repository_templates(CheckoutFiles(root, event_sha=""), "", settings)
        names = template_names(root, settings)
        job_file = load_job_file(text, str(path), job_limits(settings), templates, names)
    except JobFileError as exc:
        report_problems(exc.problems, str(path), sys.stderr)
        return 1
    count = len(job_file.jobs)
    print(f"{path}: ok ({count} job{'s' if count != 1 else ''}: {', '.join(job_file.jobs)})")
    for warning in policy_warnings(job_file, root, settings, getattr(args, "repository", None)):
        print(warning, file=sys.stderr)
    return 0


def policy_warnings(job_file: Any, root: Path, settings: Any, repository: str | None) -> list[str]:
    """What the service config's policy for the repository (``--repository``, else the
    checkout's ``origin``) would refuse in a run: ungranted Secrets, raw Argo outside the fence."""
    from service.events import Event, EventKind, Repository
    from service.jobs.grants import policy_problems
    from service.runs.recipe import plan_options
    from service.runs.trust import TRUSTED

    name = repository or origin_repository(root)
    if not name or "/" not in name:
        return []
    namespace, _, repo_name = name.rpartition("/")
    event = Event("local", EventKind.PUSH, Repository(namespace, repo_name, ""), "")
    options = plan_options(settings, event, TRUSTED)
    return [f"warning: {problem}" for problem in policy_problems(job_file, name, options)]


def origin_repository(root: Path) -> str:
    """``owner/name`` of the checkout's ``origin`` remote (its URL's last two parts), or ""."""
    import subprocess

    try:
        url = subprocess.run(
            ["git", "-C", str(root), "remote", "get-url", "origin"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    parts = url.rstrip("/").removesuffix(".git").replace(":", "/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 and all(parts[-2:]) else ""


def cmd_trigger(args: argparse.Namespace, settings: Any) -> int:
    """Start a manual run through the API (``POST /api/runs``), as any client would, and say
    which jobs run, or why none does (the API waits a little for the worker's decision)."""
    import requests

    url = (args.url or settings.public_url).rstrip("/") + "/api/runs"
    token = args.token or settings.api_token
    if not token:
        print("forgeflow trigger: no API token: set FORGEFLOW_API_TOKEN or pass --token", file=sys.stderr)
        return 2
    body: dict[str, Any] = {"forge": args.forge, "repo": args.repo, "ref": args.ref, "jobs": list(args.jobs)}
    if args.instance:
        body["instance"] = args.instance
    inputs = {}
    for item in args.input or ():
        name, sep, value = item.partition("=")
        if not sep or not name:
            print(f"forgeflow trigger: --input {item!r}: write NAME=VALUE", file=sys.stderr)
            return 2
        inputs[name] = value
    if inputs:
        body["inputs"] = inputs  # typed and checked by the server, against the job file
    if args.wait:
        body["wait"] = min(args.wait, 30.0)
    try:
        response = requests.post(
            url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30 + args.wait
        )
    except requests.RequestException as exc:
        print(f"forgeflow trigger: {url}: {exc}", file=sys.stderr)
        return 1
    try:
        answer = response.json()
    except ValueError:
        answer = {"error": response.text.strip()}
    if response.status_code >= 300:
        print(f"forgeflow trigger: {response.status_code} {answer.get('error', answer)}", file=sys.stderr)
        return 1
    print(f"accepted: {answer.get('event', '')} (delivery {answer.get('accepted', '')})")
    return _say_decision(answer, args, settings)


def _say_decision(answer: dict[str, Any], args: argparse.Namespace, settings: Any) -> int:
    if not args.wait:
        return 0
    decided = answer.get("decided")
    base = (args.url or settings.public_url).rstrip("/")
    if not decided:
        print(f"queued: the worker has not decided yet (waited {args.wait:g}s); see {base}/runs")
        return 0
    run = decided.get("run")
    if run and run.get("jobs"):
        jobs = ", ".join(job["name"] for job in run["jobs"])
        print(f"runs: {jobs} (run {run['id']}: {run['url']})")
        return 0
    outcome = str(decided.get("outcome") or "")
    print(f"nothing runs: {outcome.removeprefix('no job matched: ')}")
    if "not triggered manually" in outcome:
        print("a job runs from forgeflow trigger only with manual in its on:, e.g. on: [push, manual]")
    return 1


def add_trigger_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo", help="namespace/name")
    parser.add_argument("ref", help="a branch, tag (refs/tags/v1) or commit")
    parser.add_argument("jobs", nargs="*", help="jobs to run (default: every job with 'on: manual')")
    parser.add_argument(
        "--forge", default="local", choices=["github", "gitlab", "forgejo", "pagure", "local"]
    )
    parser.add_argument("--instance", default="", help="the forge instance, when several are configured")
    parser.add_argument("--url", help="forgeflow's base URL (default: public_url)")
    parser.add_argument("--token", help="API token (default: FORGEFLOW_API_TOKEN)")
    parser.add_argument(
        "--input", action="append", metavar="NAME=VALUE", help="a value for one of the jobs' manual inputs"
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=15.0,
        help="seconds to wait for which jobs run (default %(default)s; 0: do not wait)",
    )
