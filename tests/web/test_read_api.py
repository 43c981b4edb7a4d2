"""The read API and the run pages under bad input and faults: 400 with the reason, never a 500,
never every row; a log that cannot be read says so without the server's paths; a database
that does not answer is a 503 (issue 18, defect 6)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from service.context import Context
from service.events import EventKind
from service.executors.local.store import LocalStore
from service.forges.registry import ForgeRegistry
from service.reporting.queries import commit_statuses
from service.store.db import Database
from service.web.app import create_app
from tests.support.runs import add_run, event
from tests.support.services import postgres_database
from tests.web.conftest import Web


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("limit=abc", "limit: Input should be a valid integer"),
        ("limit=1e3", "limit: Input should be a valid integer"),
        ("limit=-1", "limit: Input should be greater than or equal to 1"),
        ("limit=100000000000000000000000", "limit: Input should be less than or equal to 200"),
        ("pr=99999999999", "pr: Input should be less than or equal to 2147483647"),
        ("sha=%25", "sha: String should match pattern"),
        ("sha=ab_", "sha: String should match pattern"),
        ("state=nope", "state: Input should be"),
        ("since=yesterday", "since: Input should be a valid datetime"),
        ("cursor=r0", "cursor: String should match pattern"),
        ("cursor=r99999999999", "cursor: String should match pattern"),
        ("color=red", "unknown query parameter 'color'"),
        ("limit=1&limit=2", "limit: give it once"),
        ("repo=a%00b", "repo: String should match pattern"),
    ],
)
def test_bad_query_parameters_are_400_with_the_reason(web: Web, query: str, reason: str):
    add_run(web.ctx)
    response = web.get(f"/api/runs?{query}")
    assert response.status_code == 400, response.data
    assert response.json["error"].startswith(reason)


@pytest.mark.parametrize("run_id", ["99999999999", "2147483648", "0", "abc", "-1", "1e3", "٣"])
def test_bad_or_huge_run_ids_are_400(web: Web, run_id: str):
    for path in (f"/api/runs/{run_id}", f"/api/runs/{run_id}/jobs/build/log", f"/runs/{run_id}"):
        response = web.get(path)
        assert response.status_code == 400, (path, response.data)
        assert "run id must be a number" in response.get_data(as_text=True)


def test_sha_filters_match_prefixes_only_never_wildcards(web: Web):
    first = add_run(web.ctx, event(sha="ab" + "0" * 38))
    add_run(web.ctx, event(sha="cd" + "0" * 38))
    found = web.get("/api/runs?sha=ab00").json["runs"]
    assert [r["id"] for r in found] == [first]
    assert web.get("/api/runs?sha=" + "ab" + "0" * 38).json["runs"][0]["id"] == first
    # the CLI's `forgeflow status` asks with what a person typed
    assert commit_statuses(web.ctx.db, "octo/hello", "%") == []
    assert commit_statuses(web.ctx.db, "octo/hello", "_b") == []
    assert web.get("/api/statuses/octo/hello/%25").status_code == 400


def test_cursor_pages_through_every_run_once(web: Web):
    ids = [add_run(web.ctx, created=datetime(2026, 1, 1) + timedelta(minutes=i)) for i in range(5)]
    seen, cursor, pages = [], "", 0
    while True:
        page = web.get(f"/api/runs?limit=2{'&cursor=' + cursor if cursor else ''}").json
        seen += [r["id"] for r in page["runs"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(ids, reverse=True) and pages == 3


def test_filters(web: Web):
    push = add_run(web.ctx, event(repo="octo/a"), phase="failed", jobs=(("t", "t", "failure"),))
    pull = add_run(web.ctx, event(repo="octo/a", pr=7, kind=EventKind.PULL_REQUEST))
    other = add_run(web.ctx, event(repo="octo/b"), created=datetime(2025, 1, 1))

    def ids(query: str) -> list[int]:
        response = web.get(f"/api/runs?{query}")
        assert response.status_code == 200, response.data
        return [r["id"] for r in response.json["runs"]]

    assert ids("repo=octo/a") == [pull, push]
    assert ids("state=failed") == [push]
    assert ids("event=pull_request") == [pull] and ids("pr=7") == [pull]
    assert ids("branch=main") == [other, push]
    assert ids("until=2025-06-01") == [other] and ids("since=2025-06-01T00:00:00Z") == [pull, push]
    assert ids("forge=gitlab") == []


def test_a_log_that_cannot_be_read_does_not_show_where_it_is(web: Web):
    ctx = web.ctx
    run_id = add_run(ctx, workflow="wf-1", phase="failed", jobs=(("build", "build", "failure"),))
    log_path = LocalStore(ctx.settings.data_dir.resolve()).log_path("forgeflow", "wf-1", "build")
    log_path.mkdir(parents=True)  # a directory where the file should be: reading it fails
    secret_place = str(ctx.settings.data_dir.resolve())
    api = web.get(f"/api/runs/{run_id}/jobs/build/log")
    assert api.status_code == 503 and "cannot be read" in api.json["error"]
    for path in (f"/runs/{run_id}", f"/api/runs/{run_id}", f"/runs/{run_id}/logs/build"):
        body = web.get(path, headers={"Accept": "text/html"}).get_data(as_text=True)
        assert secret_place not in body and "data/workflows" not in body, path


def test_log_api_gives_whole_lines_from_an_offset(web: Web):
    ctx = web.ctx
    run_id = add_run(ctx, workflow="wf-2", phase="running", jobs=(("build", "build", "running"),))
    path = LocalStore(ctx.settings.data_dir.resolve()).log_path("forgeflow", "wf-2", "build")
    path.parent.mkdir(parents=True)
    path.write_text("2026-01-01T12:00:00.000000Z ==> make\n2026-01-01T12:00:01.000000Z one\npart")
    first = web.get(f"/api/runs/{run_id}/jobs/build/log").json
    assert first["text"] == "==> make\none\n" and not first["complete"]
    assert first["next_offset"] == len(path.read_text()) - len("part")
    with path.open("a") as log:
        log.write("ial\n")
    second = web.get(f"/api/runs/{run_id}/jobs/build/log?offset={first['next_offset']}&format=html").json
    assert "partial" in second["html"] and "one" not in second["html"]
    beyond = web.get(f"/api/runs/{run_id}/jobs/build/log?offset=999999").json
    assert beyond["offset"] == 0  # the log was cut or replaced: start again
    assert web.get(f"/api/runs/{run_id}/jobs/nope/log").status_code == 404


@pytest.fixture
def dead_database_web(make_settings):
    """The app whose database stops answering: a real PostgreSQL database, dropped under it."""
    with postgres_database() as url:
        settings = make_settings(database_url=url)
        db = Database(url)
        db.migrate()
        ctx = Context(settings=settings, db=db, forges=ForgeRegistry(settings, db))
        web = Web(ctx)
        add_run(ctx)
        assert web.get("/readyz").status_code == 200
        name = url.rsplit("/", 1)[1]
        db.dispose()
        admin = Database("postgresql+psycopg2://postgres@127.0.0.1:5432/test")
        with admin.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(
                text(f'DROP DATABASE "{name}" WITH (FORCE)')
            )
        admin.dispose()
        try:
            yield web
        finally:
            ctx.close()


@pytest.mark.postgres
def test_pages_answer_503_while_the_database_is_down_and_livez_still_200(dead_database_web: Web):
    web = dead_database_web
    assert web.get("/livez").status_code == 200
    ready = web.get("/readyz")
    assert ready.status_code == 503 and ready.json["checks"]["database"] == "unreachable"
    for path in ("/runs", "/api/runs", "/api/runs/1", "/runs/1", "/repos/github/octo/hello"):
        response = web.get(path, headers={"Accept": "text/html"})
        assert response.status_code == 503, (path, response.status_code)
        assert response.headers["Retry-After"]
    assert create_app  # the factory builds apps whatever the database does


def test_a_finished_run_page_is_cacheable_and_a_running_one_revalidates(web: Web):
    done = add_run(web.ctx)
    first = web.get(f"/runs/{done}", headers={"Accept": "text/html"})
    assert first.status_code == 200 and "max-age" in first.headers["Cache-Control"]
    assert "run.js" not in first.get_data(as_text=True)  # nothing to follow: no script
    again = web.get(f"/runs/{done}", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    running = add_run(web.ctx, phase="running", jobs=(("build", "build", "running"),))
    page = web.get(f"/runs/{running}", headers={"Accept": "text/html"})
    assert page.headers["Cache-Control"] == "private, no-cache" and "run.js" in page.get_data(as_text=True)
