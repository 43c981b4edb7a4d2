"""Keeping Argo's ``{{...}}`` substitution away from what forgeflow passes through verbatim.

Argo replaces ``{{...}}`` everywhere in a template: in container args (the steps' scripts and
names) and in environment values (event data such as a pull request title). A step like
``docker inspect --format '{{.Id}}'`` would be mangled, or the Workflow refused. So a text that
contains ``{{`` is passed escaped: every backslash doubled and every ``{`` that starts a ``{{``
written as the octal escape ``\\0173``, which the driver turns back with POSIX ``printf '%b'``.
Everything else (the common case) is passed as written, readable in the manifest.

- a step name or script: escaped and prefixed with :data:`MARK`;
- an environment value: escaped, and its name listed in ``FORGEFLOW_ESCAPED_ENV``.
"""

from __future__ import annotations

import re

MARK = "::forgeflow-escaped::"
ESCAPED_ENV = "FORGEFLOW_ESCAPED_ENV"
_OPENING = re.compile(r"\{(?=\{)")

# The fixed script every steps job runs: ``sh -c DRIVER forgeflow NAME1 SCRIPT1 NAME2 ...``.
_UNESCAPE = r"""unescape() { v=$(printf '%bx' "$1"); v=${v%x}; }
for var in $FORGEFLOW_ESCAPED_ENV; do
  eval "unescape \"\${$var}\""; export "$var=$v"
done
"""
_STEPS = r"""n=0
while [ "$#" -ge 2 ]; do
  n=$((n + 1)); name=$1; script=$2; shift 2
  case $name in ::forgeflow-escaped::*) unescape "${name#::forgeflow-escaped::}"; name=$v;; esac
  case $script in ::forgeflow-escaped::*) unescape "${script#::forgeflow-escaped::}"; script=$v;; esac
  printf '==> %s\n' "$name"
"""
DRIVER = (
    _UNESCAPE
    + _STEPS
    + r"""  sh -e -c "$script" || {
    rc=$?
    printf "::forgeflow-failed::step '%s' failed with exit code %s\n" "$name" "$rc"
    exit "$rc"
  }
done
"""
)

# The script of a steps job with Secrets (arguments as DRIVER's): when ``FORGEFLOW_MASK_DIR``
# holds the job's granted Secrets (one folder each, mounted read-only), every line of every
# Secret value (4 characters or more) is replaced by ``***`` in the steps' output (stdout and
# stderr, merged) before it reaches the pod's log: with awk when the image has it, else with a
# slower POSIX sh loop. The step's exit code is kept.
_MASKS = r"""masks=""
if [ -n "${FORGEFLOW_MASK_DIR:-}" ] && [ -d "$FORGEFLOW_MASK_DIR" ]; then
  for f in "$FORGEFLOW_MASK_DIR"/*/*; do [ -f "$f" ] && masks="$masks$(cat "$f")
"; done
fi
mask() {
  if command -v awk >/dev/null 2>&1; then
    MASKS=$masks awk 'BEGIN { c = split(ENVIRON["MASKS"], raw, "\n")
      for (k = 1; k <= c; k++) { l = raw[k]; sub(/\r$/, "", l); if (length(l) >= 4) m[++n] = l }
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
        if (length(m[j]) > length(m[i])) { t = m[i]; m[i] = m[j]; m[j] = t } }
      { s = $0
        for (i = 1; i <= n; i++) {
          o = ""
          while ((p = index(s, m[i])) > 0) {
            o = o substr(s, 1, p - 1) "***"; s = substr(s, p + length(m[i]))
          }
          s = o s
        }
        print s; fflush() }'
  else
    while IFS= read -r line || [ -n "$line" ]; do
      rest=$masks
      while [ -n "$rest" ]; do
        case $rest in *"
"*) m=${rest%%"
"*}; rest=${rest#*"
"};; *) m=$rest; rest="";; esac
        m=${m%"$(printf '\r')"}
        [ "${#m}" -ge 4 ] || continue
        o=""
        while case $line in *"$m"*) true;; *) false;; esac; do
          o="$o${line%%"$m"*}***"; line=${line#*"$m"}
        done
        line="$o$line"
      done
      printf '%s\n' "$line"
    done
  fi
}
"""
MASKING_DRIVER = (
    _UNESCAPE
    + _MASKS
    + _STEPS
    + r"""  if [ -n "$masks" ]; then
    exec 3>&1
    rc=$( { { sh -e -c "$script" 2>&1 4>&- 3>&-; echo $? >&4; } | mask >&3 4>&-; } 4>&1 )
    exec 3>&-
  else
    sh -e -c "$script"; rc=$?
  fi
  if [ "$rc" -ne 0 ]; then
    printf "::forgeflow-failed::step '%s' failed with exit code %s\n" "$name" "$rc"
    exit "$rc"
  fi
done
"""
)


def needs_escape(text: str) -> bool:
    return "{{" in text


def escape(text: str) -> str:
    """``text`` for ``printf '%b'``, with no ``{{`` left in it."""
    return _OPENING.sub(r"\\0173", text.replace("\\", "\\\\"))


def unescape(text: str) -> str:
    """The inverse of :func:`escape` (what the driver's ``printf '%b'`` does), for tests."""
    return re.sub(r"\\0173|\\\\", lambda m: "{" if m.group(0) == "\\0173" else "\\", text)


def step_argument(text: str) -> str:
    """A step name or script as a driver argument."""
    if needs_escape(text) or text.startswith(MARK):
        return MARK + escape(text)
    return text


def environment(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    """Container ``env`` entries; values with ``{{`` escaped and named in ``FORGEFLOW_ESCAPED_ENV``."""
    entries, escaped = [], []
    for name, value in pairs:
        if needs_escape(value):
            escaped.append(name)
            value = escape(value)
        entries.append({"name": name, "value": value})
    if escaped:
        entries.append({"name": ESCAPED_ENV, "value": " ".join(escaped)})
    return entries
