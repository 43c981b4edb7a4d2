"""``forgeflow render``, ``explain`` and ``exec``: an event and a checkout, no service needed.

The event is a webhook file (``--event``) or made up from the checkout (``--push``, ``--tag``,
``--pr``, ``--comment``, ``--manual``: :mod:`service.cli.synthetic`). It is planned by the
worker's own recipe (:mod:`service.runs.recipe`): same policy, same namespace and service
account, same trust decision, so ``render`` prints the Workflow the worker would submit. What
the service would ask the forge comes from the checkout instead (:mod:`service.cli.checkout`);
what only the forge knows (may this fork's author write?) is assumed "no", as for anyone the
service config does not list as trusted, and the explanation says so.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.cli import synthetic
from service.cli.checkout import CheckoutFiles
from service.cli.event_files import EventFileError, event_from_file
from service.cli.explain import explain_lines
from service.cli.selection import SelectionError, selection
from service.events import Event, EventKind
from service.jobs.loader import JobFileError
from service.jobs.plan import WorkflowPlan
from service.runs.recipe import InvalidWorkflow, Planned, plan_event, workflow
from service.runs.trust import Trust, command_trust, event_trust
from service.settings import Settings

EVENT_FLAGS = ("event", "push", "tag", "pr", "comment", "manual")


class RenderError(Exception):
    pass


@dataclass
class Preview:
    """An event planned on a checkout: what would run, and why each job would or would not."""

    event: Event
    trust: Trust
    planned: Planned | None
    lines: list[str] = field(default_factory=list)

    @property
    def plan(self) -> WorkflowPlan | None:
        return self.planned.plan if self.planned is not None else None


def offline_trust(settings: Settings, event: Event) -> Trust:
    """The worker's trust decision, as far as it can be made without the forge: an author
    the service config does not list as trusted has no write access, and no commit is approved.
    A comment is written by you, a maintainer: it runs with the trust of the pull request's code."""
    no_write: Callable[[Any, str], bool] = lambda repo, user: False  # noqa: E731
    if event.kind is EventKind.COMMENT:
        return command_trust(settings, event, no_write)
    return event_trust(settings, event, no_write, lambda sha: False)


def event_of(args: argparse.Namespace, repo: Path) -> synthetic.Synthetic:
    """The event the arguments describe: a webhook file or one made up from the checkout."""
    forge = getattr(args, "forge", None) or ""
    author = getattr(args, "author", None) or ""
    if args.comment and (args.event or args.push or args.tag or args.manual):
        raise RenderError("--comment is a comment on a pull request: use it alone or with --pr NUMBER")
    try:
        if args.event:
            event, _ = event_from_file(Path(args.event), forge or None, getattr(args, "type", None))
            event, notes = synthetic.resolved(repo, event)
            return synthetic.Synthetic(event, notes)
        if args.push:
            return synthetic.push(repo, forge, args.push, author)
        if args.tag:
            return synthetic.tag(repo, forge, args.tag, author)
        if args.comment:
            number = args.pr or 1
            return synthetic.comment(
                repo, forge, args.comment, number, from_fork=args.from_fork, author=author
            )
        if args.pr:
            return synthetic.pull_request(repo, forge, args.pr, from_fork=args.from_fork, author=author)
        if args.manual:
            return synthetic.manual(repo, forge, list(args.manual), author)
    except (EventFileError, synthetic.SyntheticError) as exc:
        raise RenderError(str(exc)) from exc
    raise RenderError(
        "say which event: --push BRANCH, --tag NAME, --pr NUMBER, --comment TEXT, --manual JOB "
        "or --event FILE"
    )


def preview(args: argparse.Namespace, repo: Path, settings: Settings) -> Preview:
    """The event of ``args`` planned through the worker's recipe on the checkout ``repo``."""
    made = event_of(args, repo)
    event = made.event
    trust = offline_trust(settings, event)
    files = CheckoutFiles(repo, event.sha)
    job_path = str(repo / settings.job_file)
    lines = [f"event: {_describe(event)}", *made.notes]
    try:
        select_jobs, said = selection(args, event, settings)
    except SelectionError as exc:
        return Preview(event, trust, None, [*lines, str(exc)])
    lines += said
    try:
        planned = plan_event(files, settings, event, trust, select_jobs, job_file_name=job_path)
    except JobFileError as exc:
        raise RenderError(str(exc)) from exc
    except SelectionError as exc:
        return Preview(event, trust, None, [*lines, str(exc)])
    if planned is None:
        raise RenderError(f"{job_path}: cannot read it at {trust.job_file_ref(event)[:12]}")
    found = Preview(event, trust, planned)
    found.lines = [*lines, *files.notes, *explain_lines(event, trust, planned, settings, repo)]
    return found


def _describe(event: Event) -> str:
    pr = event.pull_request
    text = event.describe()
    if pr is not None and pr.fork and pr.source_repo is not None:
        text += f" (from the fork {pr.source_repo.full_name} by {pr.author}, into {pr.target_branch})"
    elif pr is not None and event.kind is not EventKind.COMMENT:
        text += f" ({pr.source_branch} into {pr.target_branch})"
    return text


def render(
    args: argparse.Namespace, repo: Path, settings: Settings
) -> tuple[dict[str, Any] | None, list[str]]:
    """The Workflow an event would submit (None when no job runs) and why each job did or didn't."""
    found = preview(args, repo, settings)
    plan = found.plan
    if plan is None or not plan.tasks:
        return None, found.lines
    try:
        return workflow(plan, args.run_id, settings.public_url), found.lines
    except InvalidWorkflow as exc:
        raise RenderError(f"the compiled Workflow is invalid: {exc}") from exc
