"""A job's :class:`Handoff`, resolved: needs' artifacts and outputs, cache slots, services.

Pure. Values from other jobs (outputs) reach a job only as environment values: an env value
that reads ``${{ needs.build.outputs.version }}`` becomes an Argo parameter reference filled in
when the job starts, never text in a script.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from urllib.parse import quote

from service.events import Event, EventKind
from service.jobs.expressions import EXPRESSION
from service.jobs.handoff_checks import NEEDS_OUTPUT
from service.jobs.model import JobFile, JobSpec
from service.jobs.plan_types import CachePlan, Handoff, NeedInput, ServicePlan

CACHE_PREFIX = "forgeflow-cache"
MAX_NAME = 63


def _name(text: str) -> str:
    """An Argo artifact/parameter name (letters, digits, '-', '_'), unique enough."""
    clean = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-_")
    if len(clean) > MAX_NAME:
        clean = clean[: MAX_NAME - 9] + "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return clean or "x"


def need_inputs(
    job_file: JobFile, spec: JobSpec, present: tuple[str, ...], tasks: Mapping[str, str]
) -> list[NeedInput]:
    """The artifacts of the needs in the run (not matrix jobs; unless ``artifacts: false``)."""
    found = []
    for need in spec.needs:
        producer = job_file.jobs.get(need.job)
        if not need.artifacts or need.job not in present or producer is None or producer.matrix is not None:
            continue
        for artifact in producer.artifacts:
            found.append(
                NeedInput(
                    _name(f"{tasks[need.job]}-{artifact.name}"), tasks[need.job], artifact.name, artifact.path
                )
            )
    return found


def output_env(
    env: list[tuple[str, str]], present: tuple[str, ...], tasks: Mapping[str, str]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[NeedInput], list[str]]:
    """Split ``env`` into plain pairs and pairs reading needs' outputs (as ``{{inputs.parameters.X}}``);
    the parameter inputs those need, and problems."""
    plain, reading, inputs, problems = [], [], [], []
    seen: set[str] = set()
    for key, value in env:
        if not any(NEEDS_OUTPUT.match(m.group(1)) for m in EXPRESSION.finditer(value)):
            plain.append((key, value))
            continue
        literal = EXPRESSION.sub("", value)
        if "{{" in literal:
            problems.append(f"env {key}: a value that reads outputs cannot also contain '{{{{'")
            continue

        def replace(match: re.Match[str]) -> str:
            found = NEEDS_OUTPUT.match(match.group(1))
            if found is None:
                return match.group(0)
            job, output = found.groups()
            if job not in present:
                return ""  # the need is not in the run: its outputs are empty
            parameter = _name(f"{tasks[job]}-{output}")
            if parameter not in seen:
                seen.add(parameter)
                inputs.append(NeedInput(parameter, tasks[job], output))
            return "{{inputs.parameters." + parameter + "}}"

        reading.append((key, EXPRESSION.sub(replace, value)))
    return plain, reading, inputs, problems


def cache_scopes(event: Event) -> tuple[tuple[str, ...], str]:
    """(branches whose caches a run reads, in order; the branch it writes, or "")."""
    default = event.repository.default_branch
    if event.kind is EventKind.PULL_REQUEST or event.pull_request is not None:
        target = event.pull_request.target_branch if event.pull_request else default
        return tuple(dict.fromkeys(b for b in (target, default) if b)), ""
    if event.branch:
        return tuple(dict.fromkeys(b for b in (event.branch, default) if b)), event.branch
    return ((default,) if default else ()), ""  # tags and releases read the default branch


def cache_plan(event: Event, key: str, spec: JobSpec) -> CachePlan | None:
    cache = spec.cache
    if cache is None:
        return None
    repo = f"{event.forge}/{quote(event.repository.full_name, safe='')}"
    slot = hashlib.sha256("\0".join([key, *cache.paths]).encode()).hexdigest()[:16]
    reads, writes = cache_scopes(event)

    def where(branch: str) -> str:
        return f"{CACHE_PREFIX}/{repo}/{quote(branch, safe='')}/{slot}.tgz"

    return CachePlan(
        key=key,
        paths=cache.paths,
        restore_keys=cache.restore_keys,
        reads=tuple(where(b) for b in reads),
        writes=where(writes) if writes else "",
    )


def services(spec: JobSpec) -> tuple[ServicePlan, ...]:
    return tuple(
        ServicePlan(name, s.image, tuple(sorted(s.env.items())), s.ports, s.command, s.args)
        for name, s in spec.services.items()
    )


def handoff(
    *,
    spec: JobSpec,
    depends: str,
    inputs: list[NeedInput],
    reading: list[tuple[str, str]],
    cache: CachePlan | None,
) -> Handoff:
    from service.jobs.conditions import uses_status

    return Handoff(
        depends=depends,
        condition=(spec.if_ or "") if uses_status(spec.if_) else "",
        continue_on_error=spec.continue_on_error,
        outputs=spec.outputs,
        inputs=tuple(inputs),
        output_env=tuple(sorted(reading)),
        cache=cache,
        services=services(spec),
    )
