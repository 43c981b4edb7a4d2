"""The ``forgeflow`` command: the service's processes and the tools a user has.

forgeflow serve [--host H] [--port P] [--demo]   web + worker + watcher, embedded defaults
forgeflow web | worker | watcher                 the production processes, one each
forgeflow init [PATH] [--type T]                 write a commented starter .forgeflow.yaml
forgeflow validate [PATH]                        check a .forgeflow.yaml
forgeflow schema                                 the JSON Schema of .forgeflow.yaml
forgeflow trigger REPO REF [JOB...]              start a manual run (POST /api/runs)
forgeflow render EVENT [--repo PATH] [--explain]   the Workflow an event would submit
forgeflow explain EVENT [--repo PATH]            for each job: runs, waits, skipped, and why
forgeflow exec EVENT [--repo PATH] [--job NAME] [--on-host]
                                                 run it here, each job in its image
  EVENT: --push BRANCH | --tag NAME | --pr N [--from-fork] [--author LOGIN]
         | --comment "/forgeflow test lint" | --manual JOB... | --event FILE
forgeflow replay FILE --url URL                  re-deliver a recorded webhook, signed
forgeflow status [REPO SHA]                      statuses forgeflow reported for a commit, and
                                                 the API budget left per token/App installation
forgeflow migrate                                bring the database schema up to date
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from service.settings import Settings, SettingsError, load_settings

# `forgeflow web`, per replica: a process per core, and threads enough to keep the processes busy
# while requests wait for their commit (each delivery is stored before its 202); threads that
# wait cost little memory and no CPU. (Here, not in service.web.server: the worker's and the
# watcher's commands would import the web server's libraries with it.)
DEFAULT_WORKERS, DEFAULT_THREADS = 2, 16


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {}
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if getattr(args, "port", None):
        overrides["port"] = args.port
    return load_settings(overrides=overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    import threading

    from service.cli.processes import (
        WatcherThread,
        WebThread,
        WorkerThread,
        make_wsgi_app,
        prepare,
        start_relay,
    )
    from service.context import build_context
    from service.executors.factory import build_executor
    from service.logs import setup_logging

    settings = _settings(args)
    setup_logging(settings.log_level, settings.log_format)
    ctx = build_context(settings, executor_factory=build_executor)
    from service.argo.models import argo_models

    ctx.warm_up(argo_models)
    celery = prepare(ctx)
    web = WebThread(make_wsgi_app(ctx), settings.host, settings.port)
    worker = WorkerThread(celery, settings.worker_concurrency).start()
    relay = start_relay(ctx)
    watcher = WatcherThread(ctx, watch_timeout=2).start()
    web.start()
    print(f"forgeflow is listening on {settings.public_url} (data in {settings.data_dir.resolve()})")
    print(f"  webhooks: {settings.public_url}/api/webhooks/<github|gitlab|forgejo|pagure|local>")
    print(f"  runs:     {settings.public_url}/runs")
    if args.demo:
        from service.cli.demo import demo_command, setup_demo

        bare, checkout = setup_demo(settings)
        print(f"\nDemo repository {bare.resolve()} is ready. Deliver a demo event (a push) with:\n")
        print(f"    {demo_command(checkout.resolve())}\n")
        print(f"then open {settings.public_url}/runs to watch build and test pass and style fail.")
    sys.stdout.flush()
    stop = threading.Event()
    try:
        stop.wait()
    except KeyboardInterrupt:
        print("\nstopping...")
    finally:
        web.stop()
        relay.stop()
        watcher.request_stop()
        worker.request_stop()
        watcher.stop()
        worker.stop()
        ctx.close()
    return 0


def cmd_web(args: argparse.Namespace) -> int:
    from service.web.server import prepare_metrics_dir

    prepare_metrics_dir()  # before prometheus_client is imported
    from service.context import build_context
    from service.logs import setup_logging
    from service.web.server import run_gunicorn

    settings = _settings(args)
    setup_logging(settings.log_level, settings.log_format)
    ctx = build_context(settings)
    run_gunicorn(ctx, f"{settings.host}:{settings.port}", args.workers, args.threads)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from service.cli.backend import prepare, start_relay, worker_heartbeat
    from service.context import build_context
    from service.executors.factory import build_executor
    from service.logs import setup_logging

    settings = _settings(args)
    setup_logging(settings.log_level, settings.log_format)
    ctx = build_context(settings, executor_factory=build_executor)
    from service.argo.models import argo_models

    ctx.warm_up(argo_models)
    celery = prepare(ctx)
    start_relay(ctx)  # queues the deliveries the web tier stored
    heartbeat = worker_heartbeat(celery, settings)
    celery.worker_main(
        [
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            str(settings.worker_concurrency),
            "--loglevel",
            settings.log_level,
            "--without-gossip",
            "--without-mingle",
            # a node name of its own: several workers on one host (on RabbitMQ the default,
            # celery@host, names an exclusive queue, and the second worker died on it)
            "--hostname",
            f"forgeflow-{os.getpid()}@%h",
        ]
    )
    del heartbeat
    return 0


def cmd_watcher(args: argparse.Namespace) -> int:
    import signal
    import threading

    from service.cli.backend import build_watcher, run_until_stopped
    from service.logs import setup_logging

    settings = _settings(args)
    setup_logging(settings.log_level, settings.log_format)
    watcher = build_watcher(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    from service.health import serve_health
    from service.metrics import DatabaseCollector

    serve_health(settings.health_port, [watcher.heartbeat], [DatabaseCollector(watcher.ctx.db)])
    run_until_stopped(watcher.run, stop, "forgeflow-watcher")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from service.store.db import Database

    settings = _settings(args)
    Database(settings.database).migrate()
    print("database schema is up to date")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from service.cli.jobfile import cmd_validate as validate

    return validate(args, _settings(args))


def cmd_init(args: argparse.Namespace) -> int:
    from service.cli.init import cmd_init as init

    return init(args, None)


def cmd_trigger(args: argparse.Namespace) -> int:
    from service.cli.jobfile import cmd_trigger as trigger

    return trigger(args, _settings(args))


def cmd_render(args: argparse.Namespace) -> int:
    import yaml

    from service.cli.preview import RenderError, render

    settings = _settings(args)
    try:
        manifest, explanation = render(args, Path(args.repo), settings)
    except RenderError as exc:
        print(f"forgeflow render: {exc}", file=sys.stderr)
        return 1
    for line in explanation:
        print(line, file=sys.stdout if args.explain and manifest is None else sys.stderr)
    if manifest is None:
        return 1
    sys.stdout.write(yaml.safe_dump(manifest, sort_keys=False, width=1000))
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from service.cli.preview import RenderError, preview

    try:
        found = preview(args, Path(args.repo), _settings(args))
    except RenderError as exc:
        print(f"forgeflow explain: {exc}", file=sys.stderr)
        return 1
    for line in found.lines:
        print(line)
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    from service.cli.localrun import execute
    from service.cli.preview import RenderError, preview

    settings = _settings(args)
    try:
        found = preview(args, Path(args.repo), settings)
        return execute(found, Path(args.repo), settings, sys.stdout, on_host=args.on_host, engine=args.engine)
    except RenderError as exc:
        sys.stdout.flush()
        print(f"forgeflow exec: {exc}", file=sys.stderr)
        return 2 if "--on-host" in str(exc) else 1


def add_event_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the event comes from: a webhook file, or made up from the checkout."""
    events = parser.add_mutually_exclusive_group()
    events.add_argument("--event", metavar="FILE", help="a webhook payload file (JSON)")
    events.add_argument("--push", metavar="BRANCH", help="a push of BRANCH (its commits not yet on origin)")
    events.add_argument("--tag", metavar="NAME", help="a pushed tag NAME")
    events.add_argument(
        "--pr", metavar="NUMBER", type=int, help="pull request NUMBER from the checked-out branch"
    )
    parser.add_argument(
        "--comment", metavar="TEXT", help='a comment on pull request --pr (default 1): "/forgeflow test lint"'
    )
    events.add_argument("--manual", metavar="JOB", nargs="+", help="a manual run of these jobs")
    parser.add_argument(
        "--from-fork", action="store_true", help="--pr/--comment: the pull request comes from a fork"
    )
    parser.add_argument(
        "--author", metavar="LOGIN", help="who pushed or opened the pull request (default: you)"
    )
    parser.add_argument("--forge", choices=["github", "gitlab", "forgejo", "pagure", "local"])
    parser.add_argument("--type", help="--event: the forge's event type (default: inferred from the payload)")
    parser.add_argument("--repo", default=".", help="checkout with the job file (default: .)")
    parser.add_argument("--job", metavar="NAME", action="append", help="only this job and the jobs it needs")


def cmd_replay(args: argparse.Namespace) -> int:
    from service.cli.event_files import guess_forge
    from service.cli.replay import deliver, guess_event_type, load_payload
    from service.settings import local_webhook_secret

    try:
        body, data = load_payload(Path(args.file))
    except (OSError, ValueError) as exc:
        print(f"forgeflow replay: {exc}", file=sys.stderr)
        return 2
    forge = args.forge or guess_forge(data)
    secret = args.secret
    if not secret:
        settings = _settings(args)
        if forge == "local":
            secret = local_webhook_secret(settings)
        else:
            secrets = [
                i.webhook_secret for i in settings.forge_instances() if i.kind == forge and i.webhook_secret
            ]
            if not secrets:
                print(
                    f"forgeflow replay: no {forge} webhook secret configured; pass --secret",
                    file=sys.stderr,
                )
                return 2
            secret = secrets[0]
    event_type = args.type or guess_event_type(forge, data)
    url = args.url.rstrip("/")
    if url.rsplit("/", 1)[-1] not in ("github", "gitlab", "forgejo", "pagure", "local"):
        url = f"{url}/api/webhooks/{forge}"
    response = deliver(url, forge, body, secret, event_type, args.delivery_id)
    print(f"{response.status_code} {response.text.strip()}")
    return 0 if response.status_code < 300 else 1


def cmd_status(args: argparse.Namespace) -> int:
    from service.cli.status import cmd_status as status

    return status(_settings(args), args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="forgeflow", description="Git forges to Argo Workflows.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="web + worker + watcher in one process (embedded defaults)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--demo", action="store_true", help="create a demo repository and say how to use it")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("web", help="the web process (gunicorn)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="processes (default %(default)s)")
    p.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="threads each (default %(default)s)")
    p.set_defaults(func=cmd_web)

    sub.add_parser("worker", help="the Celery worker process").set_defaults(func=cmd_worker)
    sub.add_parser("watcher", help="the watcher process").set_defaults(func=cmd_watcher)
    sub.add_parser("migrate", help="upgrade the database schema").set_defaults(func=cmd_migrate)

    from service.cli.init import add_init_arguments

    p = sub.add_parser("init", help="write a commented starter .forgeflow.yaml for the project here")
    add_init_arguments(p)
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("validate", help="check a .forgeflow.yaml")
    p.add_argument("path", nargs="?", default=".")
    p.add_argument(
        "--repository",
        help="OWNER/NAME whose policy in the service config applies (default: the checkout's origin)",
    )
    p.set_defaults(func=cmd_validate)

    from service.cli.jobfile import add_trigger_arguments, cmd_schema

    p = sub.add_parser("schema", help="print the JSON Schema of .forgeflow.yaml (for editors)")
    p.add_argument("--output", "-o", help="write it to this file instead (e.g. .forgeflow/schema.json)")
    p.set_defaults(func=cmd_schema)
    p = sub.add_parser("trigger", help="start a manual run of a repository's 'on: manual' jobs")
    add_trigger_arguments(p)
    p.set_defaults(func=cmd_trigger)

    for name, func, helptext in (
        ("render", cmd_render, "print the Workflow an event would submit"),
        ("explain", cmd_explain, "say for each job whether an event runs it, and why"),
        ("exec", cmd_exec, "run an event's jobs here, each in its image (podman or docker)"),
    ):
        p = sub.add_parser(name, help=helptext)
        add_event_arguments(p)
        if name == "render":
            p.add_argument("--explain", action="store_true", help="say why each job did or did not match")
            p.add_argument("--run-id", type=int, default=1)
        if name == "exec":
            p.add_argument(
                "--on-host", action="store_true", help="run the steps on this machine, not in images"
            )
            p.add_argument("--engine", choices=["podman", "docker"], help="the container engine to use first")
        p.set_defaults(func=func)

    p = sub.add_parser("replay", help="deliver a recorded webhook payload, signed")
    p.add_argument("file")
    p.add_argument("--url", required=True, help="forgeflow's base URL or the full webhook URL")
    p.add_argument("--forge", choices=["github", "gitlab", "forgejo", "pagure", "local"])
    p.add_argument("--type", help="event type header (default: inferred)")
    p.add_argument("--secret", help="webhook secret (default: from the settings)")
    p.add_argument("--delivery-id", help="delivery id to send (default: a new one)")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("status", help="statuses forgeflow reported for a commit; API budgets left")
    p.add_argument("repo", nargs="?")
    p.add_argument("sha", nargs="?")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SettingsError as exc:
        print(f"forgeflow: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
