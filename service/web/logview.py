"""A job's log as the run page shows it: steps with their times and exit codes, ANSI colours as
HTML, forgeflow's own markers hidden, the first error line of the failing step marked. Pure.

The log is what the executor kept: each line with its time (:mod:`service.executors.log_times`),
``==> NAME`` where the driver starts a step (:mod:`service.compiler.escape`), a
``::forgeflow-failed::step 'NAME' failed with exit code N`` marker when a step fails, and
``----- forgeflow: retry N (...) -----`` before each retry of the job. Jobs that are not steps
(``argo:`` templates) have one step, "log".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from markupsafe import Markup, escape

from service.executors.log_times import split

STEP_HEADER = "==> "
MARKER = "::forgeflow-"
FAILED_MARK = "::forgeflow-failed::"
RETRY = re.compile(r"^----- forgeflow: retry (\d+) .*-----$")
FAILED = re.compile(r"step '(.*)' failed with exit code (\d+)")
ERROR_WORDS = re.compile(
    r"\b(error|errors|failed|failure|fatal|exception|traceback|panic|assert(ion)?)\b", re.IGNORECASE
)
MAX_LINE_CHARS = 10_000


@dataclass
class LogLine:
    number: int  # 1-based, over the whole log (anchors: #<task>-L<number>)
    at: datetime | None
    html: Markup
    error: bool = False


@dataclass
class Step:
    name: str
    attempt: int = 0  # 0: the first try; N: the Nth retry
    lines: list[LogLine] = field(default_factory=list)
    started: datetime | None = None
    finished: datetime | None = None
    exit_code: int | None = None
    running: bool = False
    from_header: bool = False  # started by the driver's "==> NAME" line (not output before any)

    @property
    def failed(self) -> bool:
        return self.exit_code not in (None, 0)

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return max((self.finished - self.started).total_seconds(), 0.0)


@dataclass
class LogView:
    steps: list[Step]
    failed_step: Step | None = None
    first_error: LogLine | None = None
    attempts: int = 1

    @property
    def first_time(self) -> datetime | None:
        """When the log began (its first step or line)."""
        first_step = next((s.started for s in self.steps if s.started), None)
        first_line = next((line.at for step in self.steps for line in step.lines if line.at), None)
        return min((t for t in (first_step, first_line) if t is not None), default=None)


def parse_log(text: str, *, job_final: bool, job_passed: bool) -> LogView:
    """The steps of a job's log. ``job_final``/``job_passed``: what the job's state says (the
    last step of a passed job exited 0; an unfinished job's last step is still running)."""
    steps: list[Step] = []
    current: Step | None = None
    attempt, number = 0, 0
    last_time: datetime | None = None
    for raw in text.splitlines():
        number += 1
        at, line = split(raw)
        last_time = at or last_time
        retry = RETRY.match(line)
        if retry:
            _close(current, at, next_started=False)  # the attempt failed: its marker says how
            attempt, current = int(retry.group(1)), None
            continue
        if line.startswith(STEP_HEADER):
            _close(current, at, next_started=True)
            current = Step(line[len(STEP_HEADER) :].strip() or "step", attempt, started=at, from_header=True)
            steps.append(current)
            continue
        if line.startswith(MARKER):
            failed = FAILED.search(line) if line.startswith(FAILED_MARK) else None
            if failed and current is not None:
                current.exit_code = int(failed.group(2))
                current.finished = at or current.finished
            continue
        if current is None:  # output before any step: the checkout, or a job made of no steps
            current = Step("log" if not steps else "output", attempt, started=at)
            steps.append(current)
        current.lines.append(LogLine(number, at, ansi_to_html(line[:MAX_LINE_CHARS])))
    if current is not None:
        if current.finished is None:
            current.finished = last_time if job_final else None
        if current.exit_code is None and job_final and job_passed:
            current.exit_code = 0
        current.running = not job_final
    if len(steps) > 1 and steps[0].name == "log":
        steps[0].name = "set up"
    view = LogView(steps, attempts=attempt + 1)
    view.failed_step = next((s for s in reversed(steps) if s.failed), None)
    if view.failed_step is None and job_final and not job_passed and steps:
        view.failed_step = steps[-1]  # failed without a marker (killed, timed out, argo: job)
    if view.failed_step is not None:
        view.first_error = first_error_line(view.failed_step)
        if view.first_error is not None:
            view.first_error.error = True
    return view


def _close(step: Step | None, at: datetime | None, *, next_started: bool) -> None:
    """A step ends where the next one starts; reaching the next one means it exited 0."""
    if step is None:
        return
    if step.finished is None:
        step.finished = at or (step.lines[-1].at if step.lines else step.started)
    if step.exit_code is None and next_started:
        step.exit_code = 0


def first_error_line(step: Step) -> LogLine | None:
    """The line that most likely says what went wrong: the first that names an error, else the
    last line of the step."""
    for line in step.lines:
        if ERROR_WORDS.search(line.html.striptags()):
            return line
    return step.lines[-1] if step.lines else None


# -- ANSI SGR colours to HTML ----------------------------------------------------------------

_ESCAPES = re.compile(r"\x1b\[([0-9;]*)([A-Za-z])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass
class _Style:
    bold: bool = False
    dim: bool = False
    italic: bool = False
    underline: bool = False
    fg: str = ""  # a class (a-fg1) or a colour (#rrggbb)
    bg: str = ""

    def open(self) -> str:
        classes = [name for name, on in (("a-b", self.bold), ("a-d", self.dim)) if on]
        classes += [name for name, on in (("a-i", self.italic), ("a-u", self.underline)) if on]
        styles = []
        for kind, value in (("fg", self.fg), ("bg", self.bg)):
            if value.startswith("#"):
                styles.append(f"{'color' if kind == 'fg' else 'background'}:{value}")
            elif value:
                classes.append(f"a-{kind}{value}")
        if not classes and not styles:
            return ""
        attrs = f' class="{" ".join(classes)}"' if classes else ""
        attrs += f' style="{";".join(styles)}"' if styles else ""
        return f"<span{attrs}>"


def _palette256(n: int) -> str:
    if n < 16:
        return str(n)
    if n >= 232:
        level = 8 + (n - 232) * 10
        return f"#{level:02x}{level:02x}{level:02x}"
    n -= 16
    steps = (0, 95, 135, 175, 215, 255)
    return f"#{steps[n // 36]:02x}{steps[(n // 6) % 6]:02x}{steps[n % 6]:02x}"


def _apply(style: _Style, params: str) -> None:
    codes = [int(c) if c.isdigit() else 0 for c in params.split(";")] if params else [0]
    i = 0
    while i < len(codes):
        code = codes[i]
        if code == 0:
            style.__init__()  # type: ignore[misc]
        elif code in (1, 2, 3, 4):
            setattr(style, ("bold", "dim", "italic", "underline")[code - 1], True)
        elif code == 22:
            style.bold = style.dim = False
        elif code == 23:
            style.italic = False
        elif code == 24:
            style.underline = False
        elif 30 <= code <= 37 or 90 <= code <= 97:
            style.fg = str(code - 30 if code < 90 else code - 82)
        elif 40 <= code <= 47 or 100 <= code <= 107:
            style.bg = str(code - 40 if code < 100 else code - 92)
        elif code == 39:
            style.fg = ""
        elif code == 49:
            style.bg = ""
        elif code in (38, 48) and i + 1 < len(codes):
            colour = ""
            if codes[i + 1] == 5 and i + 2 < len(codes):
                colour, i = _palette256(codes[i + 2] % 256), i + 2
            elif codes[i + 1] == 2 and i + 4 < len(codes):
                r, g, b = (min(max(c, 0), 255) for c in codes[i + 2 : i + 5])
                colour, i = f"#{r:02x}{g:02x}{b:02x}", i + 4
            if code == 38:
                style.fg = colour
            else:
                style.bg = colour
        i += 1


def ansi_to_html(line: str) -> Markup:
    """One line with its ANSI colours as ``<span>``s; every other escape and control character
    dropped, text escaped. A carriage return keeps what a terminal shows (the text after it)."""
    if "\r" in line:
        line = line.rstrip("\r").rsplit("\r", 1)[-1]
    if "\x1b" not in line:
        return Markup(escape(_CONTROL.sub("", line)))  # noqa: S704 (escaped)
    out: list[str] = []
    style, is_open, position = _Style(), False, 0
    for match in _ESCAPES.finditer(line):
        out.append(str(escape(_CONTROL.sub("", line[position : match.start()]))))
        position = match.end()
        if match.group(2) == "m":
            _apply(style, match.group(1))
            if is_open:
                out.append("</span>")
            opening = style.open()
            out.append(opening)
            is_open = bool(opening)
    out.append(str(escape(_CONTROL.sub("", line[position:]))))
    if is_open:
        out.append("</span>")
    return Markup("".join(out))  # noqa: S704 (built from escaped text and fixed markup)
