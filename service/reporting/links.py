"""Links to forgeflow's pages: what a status's ``target_url`` and a Workflow's run link say."""

from __future__ import annotations


def run_url(public_url: str, run_id: int) -> str:
    return f"{public_url}/runs/{run_id}"


def job_url(public_url: str, run_id: int, task: str) -> str:
    return f"{run_url(public_url, run_id)}#job-{task}"
