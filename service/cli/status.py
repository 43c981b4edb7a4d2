"""``forgeflow status [REPO SHA]``: the statuses forgeflow reported for a commit, and the forges'
API budgets as last seen, both read from the database.

A database that does not answer (down, a wrong URL, not migrated yet) is said in one line that
names it (without its password) and what to check, with exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from service.settings import Settings


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from service.reporting.queries import api_budgets, commit_statuses
    from service.store.db import Database

    try:
        db = Database(settings.database)
        budgets = api_budgets(db)
        rows = commit_statuses(db, args.repo, args.sha) if args.repo and args.sha else None
    except (SQLAlchemyError, OSError) as exc:
        print(f"forgeflow status: {database_problem(settings.database, exc)}", file=sys.stderr)
        return 2
    if rows is None:  # no commit named: the forges' API budgets only
        print(json.dumps(budgets, indent=2) if args.json else "\n".join(b["text"] for b in budgets))
        return 0
    if not rows:
        print(f"no statuses for {args.repo}@{args.sha}")
        return 1
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(f"{row['state']:<8} {row['context']:<30} {row['description']}  {row['target_url']}")
    if budgets:
        print("\nAPI budgets (as last seen):")
        for budget in budgets:
            print(f"  {budget['text']}")
    return 0


def database_problem(url: str, exc: Exception) -> str:
    """What went wrong with the database at ``url``, in one line, its password hidden."""
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        shown = "FORGEFLOW_DATABASE_URL (not a database URL)"
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = reason[0][:200] if reason else type(exc).__name__
    if "no such table" in first or ("does not exist" in first and "relation" in first):
        return f"the database {shown} has no forgeflow tables yet (run forgeflow migrate): {first}"
    return (
        f"cannot read the database {shown}: {first} "
        "(is it running, and is FORGEFLOW_DATABASE_URL or the config file's database_url right?)"
    )
