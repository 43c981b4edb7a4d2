"""The database tables: deliveries, runs, jobs, and the local forge's commit statuses.

Reporting works as an outbox: ``Job.state``/``Job.description`` are what forgeflow knows,
``Job.reported_state``/``Job.reported_description`` what the forge was last told. The reporter
posts the difference once, under a short lease so that several processes never post it twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from service.clock import now


class Base(DeclarativeBase):
    pass


class DeliveryState:
    RECEIVED = "received"  # stored, not yet handed to the broker
    QUEUED = "queued"  # handed to the broker
    DONE = "done"  # processed (whatever the outcome)
    FAILED = "failed"  # gave up after retries; its jobs were told so


class Delivery(Base):
    """One accepted webhook delivery, stored before the forge gets its 202."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("forge", "instance", "delivery_id", name="uq_delivery"),
        # issue 18: a signed body seen again within the replay window is a duplicate
        UniqueConstraint("forge", "instance", "replay_key", name="uq_delivery_replay"),
        Index(
            "ix_deliveries_replay_open",
            "received_at",
            postgresql_where=text("replay_key IS NOT NULL"),
            sqlite_where=text("replay_key IS NOT NULL"),
        ),
        # issue 18: the bodies retention clears (only rows that still have one)
        Index(
            "ix_deliveries_body_kept",
            "received_at",
            postgresql_where=text("body IS NOT NULL"),
            sqlite_where=text("body IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    forge: Mapped[str] = mapped_column(String(32))
    instance: Mapped[str] = mapped_column(String(255), default="")
    delivery_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(64), default="")
    event_json: Mapped[str] = mapped_column(Text)
    body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    headers_json: Mapped[str] = mapped_column(Text, default="{}")
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.RECEIVED, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # the SHA-256 of the signed body while the replay window is open (the sweep clears it
    # after ``replay_window_seconds``); None for manual runs, which carry no signed body
    replay_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # issue 18, who is responsible for a delivery not yet done (service/store/leases.py): the
    # broker since ``sent_at``; a worker (or a retry it scheduled) until ``lease_until``
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    leased_by: Mapped[str] = mapped_column(String(255), default="")


class RunPhase:
    CREATED = "created"  # jobs recorded, workflow not yet submitted
    SUBMITTED = "submitted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ERROR = "error"
    CONFIG_ERROR = "config-error"  # the job file is broken; only forgeflow/config reported
    WAITING = "waiting"  # waiting for approval (untrusted fork)

    FINAL = frozenset({SUCCEEDED, FAILED, ERROR, CONFIG_ERROR})


class Run(Base):
    """One event's run: one Argo Workflow holding one DAG task per job (matrix cell)."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_repo_sha", "repo", "sha"),
        Index("ix_runs_pr", "repo", "pr_number"),
        Index("ix_runs_delivery_pk", "delivery_pk"),  # issue 18: retention of deliveries
        # issue 16: the local runs whose artifacts the sweep has yet to remove
        Index(
            "ix_runs_artifacts_kept",
            "created_at",
            postgresql_where=text("artifacts_expired_at IS NULL AND executor = 'local'"),
            sqlite_where=text("artifacts_expired_at IS NULL AND executor = 'local'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trigger_key: Mapped[str] = mapped_column(String(255), unique=True)
    delivery_pk: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"), nullable=True)
    forge: Mapped[str] = mapped_column(String(32))
    instance: Mapped[str] = mapped_column(String(255), default="")
    repo: Mapped[str] = mapped_column(String(255))
    sha: Mapped[str] = mapped_column(String(64))
    ref: Mapped[str] = mapped_column(String(255), default="")
    event_kind: Mapped[str] = mapped_column(String(32))
    pr_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    event_json: Mapped[str] = mapped_column(Text)
    executor: Mapped[str] = mapped_column(String(16), default="")
    namespace: Mapped[str] = mapped_column(String(255), default="")
    workflow_name: Mapped[str] = mapped_column(String(255), default="")
    manifest_json: Mapped[str] = mapped_column(Text, default="")
    phase: Mapped[str] = mapped_column(String(16), default=RunPhase.CREATED, index=True)
    message: Mapped[str] = mapped_column(Text, default="")
    stop_reason: Mapped[str] = mapped_column(Text, default="")  # why forgeflow stopped it
    concurrency_group: Mapped[str] = mapped_column(String(255), default="", index=True)
    cancel_in_progress: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=now, onupdate=now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # issue 16: when the sweep removed the local executor's kept artifacts (artifact_retention_days)
    artifacts_expired_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    jobs: Mapped[list[Job]] = relationship(
        back_populates="run", order_by="Job.id", cascade="all, delete-orphan"
    )


class JobState:
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"
    ERROR = "error"

    FINAL = frozenset({SUCCESS, FAILURE, ERROR})
    ORDER = {PENDING: 0, RUNNING: 1, SUCCESS: 2, FAILURE: 2, ERROR: 2}


class Job(Base):
    """One job (one matrix cell) of a run: one DAG task, one commit status."""

    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("run_id", "task", name="uq_job_task"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))  # the job's name in the job file
    task: Mapped[str] = mapped_column(String(255))  # the DAG task name
    context: Mapped[str] = mapped_column(String(255))  # the commit status context
    state: Mapped[str] = mapped_column(String(16), default=JobState.PENDING)
    description: Mapped[str] = mapped_column(String(1024), default="")
    reported_state: Mapped[str] = mapped_column(String(16), default="")
    reported_description: Mapped[str] = mapped_column(String(1024), default="")
    report_lease_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    report_attempts: Mapped[int] = mapped_column(Integer, default=0)
    report_error: Mapped[str] = mapped_column(Text, default="")
    # GitHub App mode: the check run that shows this job (created once, then one PATCH per change)
    check_run_id: Mapped[str] = mapped_column(String(32), default="")
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=now, onupdate=now)

    run: Mapped[Run] = relationship(back_populates="jobs")

    @property
    def unreported(self) -> bool:
        return (self.state, self.description) != (self.reported_state, self.reported_description)


class LocalStatus(Base):
    """A commit status on the embedded ``local`` forge (real forges keep their own)."""

    __tablename__ = "local_statuses"
    __table_args__ = (UniqueConstraint("repo", "sha", "context", name="uq_local_status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repo: Mapped[str] = mapped_column(String(255))
    sha: Mapped[str] = mapped_column(String(64))
    context: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(String(1024), default="")
    target_url: Mapped[str] = mapped_column(String(1024), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=now, onupdate=now)


class WorkflowLog(Base):
    """A finished job's log on the ``argo`` executor, kept after Argo deleted its pod
    (``podGC``); see :mod:`service.executors.argo.logs`."""

    __tablename__ = "workflow_logs"
    __table_args__ = (UniqueConstraint("namespace", "workflow", "task", name="uq_workflow_log"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    namespace: Mapped[str] = mapped_column(String(255))
    workflow: Mapped[str] = mapped_column(String(255))
    task: Mapped[str] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text, default="")
    stored_at: Mapped[datetime] = mapped_column(DateTime, default=now)


class ForgeNote(Base):
    """A note forgeflow posts at most once on a pull/merge request, e.g. "statuses cannot be
    posted on this fork". The row is claimed before the note is posted, so concurrent reporters
    and redeliveries never post it twice."""

    __tablename__ = "forge_notes"
    __table_args__ = (UniqueConstraint("forge", "instance", "repo", "number", "topic", name="uq_forge_note"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    forge: Mapped[str] = mapped_column(String(32))
    instance: Mapped[str] = mapped_column(String(255), default="")
    repo: Mapped[str] = mapped_column(String(255))
    number: Mapped[int] = mapped_column(Integer)  # the pull/merge request
    topic: Mapped[str] = mapped_column(String(64))  # what the note is about
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)


class Approval(Base):
    """``/forgeflow ok-to-test``: an untrusted pull request may run at this head commit."""

    __tablename__ = "approvals"
    __table_args__ = (UniqueConstraint("forge", "instance", "repo", "pr_number", "sha", name="uq_approval"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    forge: Mapped[str] = mapped_column(String(32))
    instance: Mapped[str] = mapped_column(String(255), default="")
    repo: Mapped[str] = mapped_column(String(255))
    pr_number: Mapped[int] = mapped_column(Integer)
    sha: Mapped[str] = mapped_column(String(64))
    approved_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)


class CommandRecord(Base):
    """One command of one comment, handled once however often the comment is delivered."""

    __tablename__ = "commands"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(512), unique=True)  # forge:instance:repo:comment:index
    command: Mapped[str] = mapped_column(String(255))
    author: Mapped[str] = mapped_column(String(255), default="")
    state: Mapped[str] = mapped_column(String(16), default="started")  # started | done
    outcome: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    # when a worker last took it on: another may take over a started one only once this is old
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime, default=now, nullable=True)


class Schedule(Base):
    """A job file's ``on.schedule`` for one branch, recorded when a push to it is processed
    (see :mod:`service.runs.schedules`); each tick fires once, as a ``schedule`` delivery."""

    __tablename__ = "schedules"
    __table_args__ = (UniqueConstraint("forge", "instance", "repo", "branch", "cron", name="uq_schedule"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    forge: Mapped[str] = mapped_column(String(32))
    instance: Mapped[str] = mapped_column(String(255), default="")
    repo: Mapped[str] = mapped_column(String(255))
    branch: Mapped[str] = mapped_column(String(255))
    cron: Mapped[str] = mapped_column(String(255))
    repository_json: Mapped[str] = mapped_column(Text, default="{}")  # the repository, as its push said
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)


class ApiToken(Base):
    """A personal token for the JSON API, made by a signed-in user on ``/account``. Only its
    SHA-256 is kept; it acts as that user (what they may read and do on their forge)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the token
    forge: Mapped[str] = mapped_column(String(32))
    instance: Mapped[str] = mapped_column(String(255), default="")
    login: Mapped[str] = mapped_column(String(255), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class GithubInstallation(Base):
    """Where a GitHub App is installed (``installation`` webhooks): an account, its repository
    selection (``all`` or ``selected``), suspended or not. Removed when the App is uninstalled."""

    __tablename__ = "github_installations"
    __table_args__ = (UniqueConstraint("instance", "installation_id", name="uq_github_installation"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance: Mapped[str] = mapped_column(String(255), default="")
    installation_id: Mapped[int] = mapped_column(BigInteger)
    account: Mapped[str] = mapped_column(String(255), default="")
    app_id: Mapped[str] = mapped_column(String(32), default="")
    repository_selection: Mapped[str] = mapped_column(String(16), default="")
    suspended: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=now, onupdate=now)


class GithubInstallationRepo(Base):
    """A repository a GitHub App installation was given (``installation_repositories``, or the
    list an ``installation`` event names): which installation token speaks for it."""

    __tablename__ = "github_installation_repos"
    __table_args__ = (UniqueConstraint("instance", "repo", name="uq_github_installation_repo"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance: Mapped[str] = mapped_column(String(255), default="")
    repo: Mapped[str] = mapped_column(String(255))  # namespace/name, lower case
    installation_id: Mapped[int] = mapped_column(BigInteger, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=now, onupdate=now)


class ForgeBudget(Base):
    """What a forge said is left of an API budget (rate limit) for one token or installation,
    as last seen: ``forgeflow status`` shows it."""

    __tablename__ = "forge_budgets"
    __table_args__ = (UniqueConstraint("forge", "instance", "key", name="uq_forge_budget"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    forge: Mapped[str] = mapped_column(String(32))
    instance: Mapped[str] = mapped_column(String(255), default="")
    key: Mapped[str] = mapped_column(String(255))  # "token", "installation 123", ...
    remaining: Mapped[int] = mapped_column(Integer, default=-1)
    limit: Mapped[int] = mapped_column(Integer, default=-1)
    reset_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=now, onupdate=now)


# The tables themselves, for plain (Core) statements on hot paths: no ORM layer in between.
DELIVERIES = cast(Table, Delivery.__table__)
RUNS = cast(Table, Run.__table__)
JOBS = cast(Table, Job.__table__)
