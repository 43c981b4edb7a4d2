"""What jobs hand each other, in Argo: depends, continueOn, artifacts, output parameters,
cache artifacts, sidecars, and forgeflow's own steps around the job's.

Only jobs that use one of these features get any of it, so a job file without them compiles
exactly as before. forgeflow's own steps are fixed scripts (like the driver): the values they
work on (cache key, paths, output names, ports) come as environment variables.

- ``wait for services`` (first): each service port answers on localhost, or the job fails
  after ``FORGEFLOW_SERVICE_TIMEOUT`` seconds (Argo starts sidecars with the main container,
  not before it);
- ``restore cache`` (before the steps): computes the key (``hashFiles`` in the checkout),
  then unpacks the first slot read whose key matches exactly or starts with a restore key;
- ``save cache`` and ``outputs`` (after the steps, so only when they all succeeded): the cache
  is saved when its key missed and the run may write it; each declared output is taken from
  the last ``name=value`` line of ``$FORGEFLOW_OUTPUT``.
"""

from __future__ import annotations

import re
from typing import Any

from service.jobs.expressions import EXPRESSION
from service.jobs.plan_types import CachePlan, Handoff, NeedInput, TaskPlan

SOURCE_PATH = "/workspace/source"
# in the checkout (writable where the steps build), created by forgeflow's own steps
STATE = f"{SOURCE_PATH}/.forgeflow"
OUTPUT_FILE = f"{SOURCE_PATH}/.forgeflow-output"
CACHE_IN = "/workspace/cache"  # restored slots (read only)
CACHE_OUT = f"{STATE}/cache-save"
ANNOTATION_IF = "forgeflow.dev/if"
Manifest = dict[str, Any]

WAIT_FOR_SERVICES = r"""for port in $FORGEFLOW_SERVICE_PORTS; do
  n=0
  while :; do
    if command -v bash >/dev/null 2>&1; then
      bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "$port" 2>/dev/null && break
    elif command -v nc >/dev/null 2>&1; then
      nc -z 127.0.0.1 "$port" 2>/dev/null && break
    elif command -v python3 >/dev/null 2>&1; then
      python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' \
        "$port" 2>/dev/null && break
    else
      echo "no bash, nc or python3 in the image to probe port $port: waiting 5 s instead"; sleep 5; break
    fi
    n=$((n + 1))
    if [ "$n" -ge "${FORGEFLOW_SERVICE_TIMEOUT:-120}" ]; then
      echo "service port $port did not open within ${FORGEFLOW_SERVICE_TIMEOUT:-120} s"; exit 1
    fi
    sleep 1
  done
  echo "port $port is open"
done
"""

RESTORE_CACHE = r"""set -f
state=$FORGEFLOW_STATE; mkdir -p "$state"
nl='
'
if command -v sha256sum >/dev/null 2>&1; then sum=sha256sum; else sum=cksum; fi
key=$FORGEFLOW_CACHE_KEY
i=0
while [ "$i" -lt "${FORGEFLOW_CACHE_HASHES:-0}" ]; do
  i=$((i + 1))
  eval "globs=\${FORGEFLOW_CACHE_HASH_$i}"
  files=$(IFS=$nl; for glob in $globs; do
    a=$(printf '%s' "$glob" | sed 's#\*\*/##g; s#\*\*#*#g')
    b=$(printf '%s' "$glob" | sed 's#\*\*/#*/#g; s#\*\*#*#g')
    find . \( -path ./.git -o -path ./.forgeflow \) -prune \
      -o -type f \( -path "./$a" -o -path "./$b" \) -print 2>/dev/null
  done | LC_ALL=C sort -u)
  hash=""
  if [ -n "$files" ]; then
    hash=$(IFS=$nl; for f in $files; do cat "$f"; done | $sum | cut -d' ' -f1)
  fi
  pre=${key%%"@@hash$i@@"*}; post=${key#*"@@hash$i@@"}; key=$pre$hash$post
done
printf '%s' "$key" > "$state/cache-key"
hit=""
n=0
while [ "$n" -lt "${FORGEFLOW_CACHE_READS:-0}" ]; do
  dir=$FORGEFLOW_CACHE_IN/$n; n=$((n + 1))
  [ -f "$dir/key" ] || continue
  found=$(cat "$dir/key")
  if [ "$found" = "$key" ]; then
    hit=exact
  else
    IFS=$nl
    for prefix in $FORGEFLOW_CACHE_RESTORE_KEYS; do
      case $found in "$prefix"*) hit=partial; break;; esac
    done
    unset IFS
  fi
  [ -n "$hit" ] || continue
  i=0
  IFS=$nl
  for path in $FORGEFLOW_CACHE_PATHS; do
    if [ -e "$dir/paths/$i" ]; then
      rm -rf "$path"; mkdir -p "$(dirname "$path")"; cp -R -p "$dir/paths/$i" "$path"
    fi
    i=$((i + 1))
  done
  unset IFS
  echo "cache: restored $found ($hit match for $key)"
  if [ "$hit" = exact ]; then : > "$state/cache-hit"; fi
  break
done
if [ -z "$hit" ]; then echo "cache: nothing saved yet for $key"; fi
"""

SAVE_CACHE = r"""set -f
state=$FORGEFLOW_STATE
key=$(cat "$state/cache-key")
if [ -f "$state/cache-hit" ]; then
  echo "cache: $key was restored as it is; not saved again"; exit 0
fi
if [ -z "$FORGEFLOW_CACHE_SAVE" ]; then
  echo "cache: not saved (pull requests and tags read their branch's cache, never write it)"; exit 0
fi
out=$state/cache-save
rm -rf "$out"; mkdir -p "$out/paths"; printf '%s' "$key" > "$out/key"
nl='
'
i=0
IFS=$nl
for path in $FORGEFLOW_CACHE_PATHS; do
  if [ -e "$path" ]; then cp -R -p "$path" "$out/paths/$i"; fi
  i=$((i + 1))
done
unset IFS
echo "cache: saved $key"
"""

OUTPUTS = r"""state=$FORGEFLOW_STATE; mkdir -p "$state/outputs"
for name in $FORGEFLOW_OUTPUTS; do
  value=""
  if [ -f "$FORGEFLOW_OUTPUT" ]; then
    value=$(grep "^$name=" "$FORGEFLOW_OUTPUT" | tail -n 1 | cut -d= -f2-)
  fi
  printf '%s' "$value" > "$state/outputs/$name"
  echo "output $name=$value"
done
"""

_HASH_FILES = re.compile(r"""hashFiles\((.*)\)""", re.DOTALL)
_QUOTED = re.compile(r"""'([^']*)'|"([^"]*)\"""")


def cache_key_env(cache: CachePlan) -> list[tuple[str, str]]:
    """The key with each ``hashFiles(...)`` as ``@@hashN@@`` and the globs of each."""
    globs: list[str] = []

    def replace(match: re.Match[str]) -> str:
        inner = _HASH_FILES.fullmatch(match.group(1).strip())
        if inner is None:
            return match.group(0)
        globs.append("\n".join(a or b for a, b in _QUOTED.findall(inner.group(1))))
        return f"@@hash{len(globs)}@@"

    key = EXPRESSION.sub(replace, cache.key)
    pairs = [("FORGEFLOW_CACHE_KEY", key), ("FORGEFLOW_CACHE_HASHES", str(len(globs)))]
    pairs += [(f"FORGEFLOW_CACHE_HASH_{i}", g) for i, g in enumerate(globs, 1)]
    pairs += [
        ("FORGEFLOW_CACHE_PATHS", "\n".join(cache.paths)),
        ("FORGEFLOW_CACHE_RESTORE_KEYS", "\n".join(cache.restore_keys)),
        ("FORGEFLOW_CACHE_SAVE", "true" if cache.writes else ""),
    ]
    return pairs


def steps(handoff: Handoff, own: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """The job's steps with forgeflow's own around them."""
    before: list[tuple[str, str]] = []
    after: list[tuple[str, str]] = []
    if handoff.services:
        before.append(("wait for services", WAIT_FOR_SERVICES))
    if handoff.cache is not None:
        before.append(("restore cache", RESTORE_CACHE))
        after.append(("save cache", SAVE_CACHE))
    if handoff.outputs:
        after.append(("outputs", OUTPUTS))
    return (*before, *own, *after)


def environment(handoff: Handoff) -> list[tuple[str, str]]:
    """Variables forgeflow's own steps read."""
    pairs: list[tuple[str, str]] = []
    if not handoff.driver_steps:
        return pairs
    pairs.append(("FORGEFLOW_STATE", STATE))
    if handoff.outputs:
        pairs += [("FORGEFLOW_OUTPUT", OUTPUT_FILE), ("FORGEFLOW_OUTPUTS", " ".join(handoff.outputs))]
    if handoff.cache is not None:
        reads = str(len(handoff.cache.reads))
        pairs += [("FORGEFLOW_CACHE_IN", CACHE_IN), ("FORGEFLOW_CACHE_READS", reads)]
        pairs += cache_key_env(handoff.cache)
    ports = [str(p) for s in handoff.services for p in s.ports]
    if ports:
        pairs.append(("FORGEFLOW_SERVICE_PORTS", " ".join(ports)))
    return pairs


def task_fields(entry: Manifest, handoff: Handoff, *, nested: bool) -> None:
    """``depends``, ``continueOn`` and the arguments a DAG task passes its template.

    A main-DAG task takes its needs' outputs and artifacts (``tasks.X``); a matrix cell's task
    takes them from its nested DAG's inputs, which its group's task filled."""
    if handoff.depends:
        entry.pop("dependencies", None)
        entry["depends"] = handoff.depends
    parameters, artifacts = _arguments(handoff.inputs, nested)
    if parameters or artifacts:
        arguments = entry.setdefault("arguments", {})
        if parameters:
            arguments.setdefault("parameters", []).extend(parameters)
        if artifacts:
            arguments["artifacts"] = artifacts
    if handoff.continue_on_error:
        entry["continueOn"] = {"failed": True, "error": True}


def _arguments(inputs: tuple[NeedInput, ...], nested: bool) -> tuple[list[Manifest], list[Manifest]]:
    parameters, artifacts = [], []
    for item in inputs:
        if item.path:
            source = (
                f"{{{{inputs.artifacts.{item.name}}}}}"
                if nested
                else (f"{{{{tasks.{item.task}.outputs.artifacts.{item.source}}}}}")
            )
            artifacts.append({"name": item.name, "from": source, "optional": True})
        else:
            value = (
                f"{{{{inputs.parameters.{item.name}}}}}"
                if nested
                else (f"{{{{tasks.{item.task}.outputs.parameters.{item.source}}}}}")
            )
            parameters.append({"name": item.name, "value": value})
    return parameters, artifacts


def group_inputs(template: Manifest, handoff: Handoff) -> None:
    """A matrix job's nested DAG declares what its cells take from the needs."""
    inputs: Manifest = {}
    if handoff.parameter_inputs:
        inputs["parameters"] = [{"name": i.name} for i in handoff.parameter_inputs]
    if handoff.artifact_inputs:
        inputs["artifacts"] = [{"name": i.name, "optional": True} for i in handoff.artifact_inputs]
    if inputs:
        template["inputs"] = inputs


def template_fields(template: Manifest, task: TaskPlan) -> None:
    """Inputs, outputs, sidecars and the condition annotation of a steps job's template."""
    handoff = task.handoff
    if handoff.condition:
        template["metadata"]["annotations"] = {ANNOTATION_IF: handoff.condition}
    inputs = template["inputs"]
    if handoff.parameter_inputs:
        inputs["parameters"] = [{"name": i.name} for i in handoff.parameter_inputs]
    artifacts = inputs["artifacts"]
    for item in handoff.artifact_inputs:
        artifacts.append({"name": item.name, "path": f"{SOURCE_PATH}/{item.path}", "optional": True})
    cache = handoff.cache
    if cache is not None:
        for index, key in enumerate(cache.reads):
            artifacts.append(
                {
                    "name": f"cache-{index}",
                    "path": f"{CACHE_IN}/{index}",
                    "optional": True,
                    "s3": {"key": key},
                }
            )
    outputs: Manifest = template.get("outputs") or {}
    if handoff.outputs:
        outputs["parameters"] = [
            {"name": name, "valueFrom": {"path": f"{STATE}/outputs/{name}", "default": ""}}
            for name in handoff.outputs
        ]
    if cache is not None and cache.writes:
        outputs.setdefault("artifacts", []).append(
            {"name": "cache", "path": CACHE_OUT, "optional": True, "s3": {"key": cache.writes}}
        )
    if outputs:
        template["outputs"] = outputs
    if handoff.services:
        template["sidecars"] = [_sidecar(s) for s in handoff.services]


def _sidecar(service: Any) -> Manifest:
    sidecar: Manifest = {"name": service.name, "image": service.image}
    if service.command:
        sidecar["command"] = list(service.command)
    if service.args:
        sidecar["args"] = list(service.args)
    if service.env:
        sidecar["env"] = [{"name": k, "value": v} for k, v in service.env]
    if service.ports:
        sidecar["ports"] = [{"containerPort": p} for p in service.ports]
    return sidecar
