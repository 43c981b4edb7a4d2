"""What forgeflow says back in a pull request. Pure text builders."""

from __future__ import annotations

from collections.abc import Sequence

COMMANDS_HELP = (
    ("test [JOB ...]", "run the named jobs (all jobs that answer comments when none are named)"),
    ("retest", "run again the jobs that failed on the current head commit"),
    ("cancel [JOB ...]", "stop the running runs of this pull request"),
    ("ok-to-test", "approve a pull request from a fork for a run at its current head commit"),
    ("help", "this list"),
)


def help_text(prefix: str, jobs: Sequence[str], words: dict[str, list[str]], note: str = "") -> str:
    lines = ["forgeflow commands (one per line, in a comment of this pull request):", ""]
    lines += [f"- `{prefix} {usage}`: {what}" for usage, what in COMMANDS_HELP]
    for word, bound in sorted(words.items()):
        if word != "test":
            lines.append(f"- `{prefix} {word}`: run {', '.join(f'`{j}`' for j in bound)}")
    lines += ["", f"Jobs in this repository: {', '.join(f'`{j}`' for j in jobs) if jobs else '(none)'}."]
    if note:
        lines += ["", note]
    return "\n".join(lines)


def unknown_command(prefix: str, word: str, words: Sequence[str]) -> str:
    known = ["test", "retest", "cancel", "ok-to-test", "help", *[w for w in words if w != "test"]]
    return (
        f"I don't know `{prefix} {word}`. Commands: "
        + ", ".join(f"`{prefix} {w}`" for w in known)
        + f". `{prefix} help` explains them."
    )


def unknown_jobs(prefix: str, unknown: Sequence[str], jobs: Sequence[str]) -> str:
    example = jobs[0] if jobs else "JOB"
    return (
        f"No job named {', '.join(f'`{j}`' for j in unknown)} in this repository's job file. "
        f"Jobs: {', '.join(f'`{j}`' for j in jobs) or '(none)'}; e.g. `{prefix} test {example}`."
    )


def no_comment_jobs(prefix: str, word: str, jobs: Sequence[str]) -> str:
    return (
        f"No job answers `{prefix} {word}`: add `comment` to a job's `on:` (or name jobs: "
        f"`{prefix} test {jobs[0] if jobs else 'JOB'}`)."
    )


def not_allowed(prefix: str, user: str, word: str, repo: str) -> str:
    return (
        f"@{user}: only people with write access to {repo} can use `{prefix} {word}`. "
        f"A maintainer can start the jobs with `{prefix} test`, or approve this pull request "
        f"with `{prefix} ok-to-test`."
    )


def rerun_not_allowed(prefix: str, user: str, repo: str) -> str:
    return (
        f"@{user}: only people with write access to {repo} (or the author of this pull request) "
        f"can re-run its checks. A maintainer can re-run them, or comment `{prefix} retest`."
    )


def started(what: str, run_url: str, jobs: Sequence[str], sha: str) -> str:
    return f"{what}: {', '.join(f'`{j}`' for j in jobs)} at {sha[:7]}. Run: {run_url}"


def nothing_to_retest(sha: str) -> str:
    return f"Nothing to retest at {sha[:7]}: no job failed there."


def cancelled(user: str, run_urls: Sequence[str]) -> str:
    if not run_urls:
        return f"@{user}: nothing is running for this pull request."
    return f"Cancelled by @{user}: {', '.join(run_urls)}"


def approved(user: str, sha: str, run_urls: Sequence[str]) -> str:
    runs = (
        f" Started: {', '.join(run_urls)}"
        if run_urls
        else " Nothing was waiting; new runs of this commit will start."
    )
    return f"@{user} approved {sha[:7]} for a run.{runs}"
