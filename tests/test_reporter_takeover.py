"""A reporter that dies mid-post never makes the next one post the same status twice (issue 18).

A job's report lease is taken by a conditional UPDATE, renewed while the post is in flight, and
lapses 20 s after its holder died (it was 60 s, with no renewal). Whoever takes a lapsed lease
over asks the forge first: when the dead reporter's post arrived, it is recorded, not repeated.
Before issue 18 the identical pending status was posted a second time.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from service.clock import now
from service.context import build_context
from service.events import Event, EventKind, Repository
from service.forges.base import StatusReport
from service.reporting.forge_states import for_forge
from service.reporting.reporter import report_job
from service.store.models import Job, Run
from tests.conftest import WEBHOOK_SECRET

REPO = "octo/hello"
SHA = "c" * 40


def setup(make_settings, fake_github, git_repo):
    fake_github.add_repo(REPO, git_repo)
    settings = make_settings(
        github_webhook_secret=WEBHOOK_SECRET, github_token="t", github_api_url=fake_github.api_url
    )
    ctx = build_context(settings)
    instance = settings.forge_instances()[0].name
    event = Event(
        forge="github",
        kind=EventKind.PUSH,
        repository=Repository(namespace="octo", name="hello", clone_url=git_repo.url),
        sha=SHA,
        ref="refs/heads/main",
    )
    with ctx.db.session() as session:
        run = Run(trigger_key="t", forge="github", instance=instance, repo=REPO, sha=SHA, event_kind="push")
        run.event_json = event.to_json()
        run.jobs.append(Job(name="lint", task="lint", context="forgeflow/lint", description="queued"))
        session.add(run)
        session.flush()
        job_id = run.jobs[0].id
    return ctx, job_id, instance


def lapse(ctx, job_id: int) -> None:
    """The reporter holding the job's lease was SIGKILLed: the lease lapsed."""
    with ctx.db.session() as session:
        session.execute(
            update(Job).where(Job.id == job_id).values(report_lease_until=now() - timedelta(seconds=1))
        )


def reported(ctx, job_id: int) -> tuple[str, str]:
    with ctx.db.session() as session:
        job = session.scalars(select(Job).where(Job.id == job_id)).one()
        return job.reported_state, job.reported_description


def test_a_post_that_arrived_before_its_reporter_died_is_not_repeated(make_settings, fake_github, git_repo):
    ctx, job_id, instance = setup(make_settings, fake_github, git_repo)
    try:
        # the dead reporter had posted "pending: queued" and died before recording it
        forge = ctx.forges.get("github", instance)
        report = StatusReport(
            "forgeflow/lint", "pending", "queued", f"{ctx.settings.public_url}/runs/1#job-lint"
        )
        forge.set_status(
            Repository(namespace="octo", name="hello", clone_url=git_repo.url),
            SHA,
            for_forge("github", report),
        )
        lapse(ctx, job_id)
        assert report_job(ctx.db, ctx.forges, ctx.settings.public_url, job_id) is False
        assert len(fake_github.posted(REPO)) == 1, fake_github.posted(REPO)
        assert reported(ctx, job_id) == ("pending", "queued")
    finally:
        ctx.close()


def test_a_post_that_never_arrived_is_made_by_whoever_takes_over(make_settings, fake_github, git_repo):
    ctx, job_id, _instance = setup(make_settings, fake_github, git_repo)
    try:
        lapse(ctx, job_id)
        assert report_job(ctx.db, ctx.forges, ctx.settings.public_url, job_id) is True
        assert [(p.state, p.description) for p in fake_github.posted(REPO)] == [("pending", "queued")]
        assert reported(ctx, job_id) == ("pending", "queued")
    finally:
        ctx.close()


def test_a_live_lease_is_left_to_its_holder(make_settings, fake_github, git_repo):
    ctx, job_id, _instance = setup(make_settings, fake_github, git_repo)
    try:
        with ctx.db.session() as session:
            session.execute(update(Job).values(report_lease_until=now() + timedelta(seconds=15)))
        assert report_job(ctx.db, ctx.forges, ctx.settings.public_url, job_id) is False
        assert fake_github.posted(REPO) == []
    finally:
        ctx.close()
