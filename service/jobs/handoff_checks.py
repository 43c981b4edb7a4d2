"""Checks of what jobs hand each other that need the whole job file (see :mod:`checks`)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from service.jobs.expressions import SIMPLE
from service.jobs.model import JobFile, JobSpec
from service.jobs.suggest import did_you_mean

NEEDS_OUTPUT = re.compile(r"^\s*needs\.([A-Za-z0-9][A-Za-z0-9_.-]*?)\.outputs\.([A-Za-z_][A-Za-z0-9_-]*)\s*$")


def output_problems(job_file: JobFile, job: JobSpec, expressions: Sequence[str]) -> Iterator[str]:
    """What is wrong with the ``${{ }}`` of an env value that reads a need's outputs."""
    keys = set(job.matrix.axes) | {k for e in job.matrix.include for k in e} if job.matrix else set()
    for inside in expressions:
        found = NEEDS_OUTPUT.match(inside)
        if found is None:
            simple = SIMPLE.match(inside)
            if simple is None or simple.group(1) != "matrix" or simple.group(2) not in keys:
                yield (
                    "only ${{ needs.JOB.outputs.NAME }} and ${{ matrix.NAME }} can be used here, "
                    f"not {inside!r}"
                )
            continue
        need, output = found.groups()
        if need not in job.need_names:
            yield f"{need!r} is not in this job's needs"
            continue
        producer = job_file.jobs.get(need)
        if producer is None:
            continue  # reported with needs
        if producer.matrix is not None:
            yield f"{need!r} is a matrix job: its cells' outputs cannot be told apart"
        elif output not in producer.outputs:
            hint = did_you_mean(output, producer.outputs)
            yield f"{need!r} declares no output {output!r}{hint} (outputs: {list(producer.outputs)})"
