"""The run page's picture of a run: its jobs as a graph of ``needs``, drawn as SVG. Pure.

One box per job, coloured by state, with its duration; a matrix job is one box listing its
cells. Columns are the longest chain of needs before a job; edges go from a need to the job.
The dependencies come from the run's own Workflow manifest (what Argo runs), so the picture
shows what actually runs. Every box links to the job's section of the page, and carries
``data-task`` so the page's script can recolour it as states change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from service.dag import dependencies_of

BOX_WIDTH, HEADER, CELL, GAP_X, GAP_Y, PAD = 200, 28, 20, 60, 18, 10
MAX_LABEL = 26


@dataclass(frozen=True)
class Cell:
    task: str
    label: str
    state: str
    duration: str


@dataclass(frozen=True)
class Box:
    job: str
    cells: tuple[Cell, ...]

    @property
    def matrix(self) -> bool:
        return len(self.cells) > 1 or (len(self.cells) == 1 and "." in self.cells[0].task)

    @property
    def state(self) -> str:
        """A matrix job's state: the worst of its cells' (failure over running over pending)."""
        order = ("failure", "error", "running", "pending", "success")
        states = {c.state for c in self.cells}
        return next((s for s in order if s in states), "pending")

    @property
    def height(self) -> int:
        return HEADER + (len(self.cells) * CELL + 6 if self.matrix else 0)


def _short(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def boxes_of(jobs: Sequence[tuple[str, str, str, str, str]]) -> list[Box]:
    """Group ``(job name, task, context, state, duration)`` rows into one box per job."""
    grouped: dict[str, list[Cell]] = {}
    for name, task, context, state, duration in jobs:
        label = context.split(" (", 1)[1].rstrip(")") if " (" in context else name
        grouped.setdefault(name, []).append(Cell(task, label, state, duration))
    return [Box(name, tuple(cells)) for name, cells in grouped.items()]


def job_edges(boxes: Sequence[Box], manifest: dict[str, object] | None) -> list[tuple[str, str]]:
    """(need, job) pairs between the boxes, from the manifest's DAG."""
    if not manifest:
        return []
    top = {cell.task.split(".", 1)[0]: box.job for box in boxes for cell in box.cells}
    edges: list[tuple[str, str]] = []
    for path, needs in dependencies_of(manifest).items():
        if "." in path or path not in top:
            continue
        for need in needs:
            pair = (top.get(need.split(".", 1)[0], ""), top[path])
            if pair[0] and pair[0] != pair[1] and pair not in edges:
                edges.append(pair)
    return edges


def _levels(boxes: Sequence[Box], edges: Sequence[tuple[str, str]]) -> dict[str, int]:
    needs: dict[str, list[str]] = {box.job: [] for box in boxes}
    for need, job in edges:
        needs[job].append(need)
    levels: dict[str, int] = {}

    def level(job: str, trail: frozenset[str]) -> int:
        if job in levels:
            return levels[job]
        if job in trail:  # a cycle cannot compile; never loop on one
            return 0
        value = max((level(n, trail | {job}) + 1 for n in needs[job]), default=0)
        levels[job] = value
        return value

    for box in boxes:
        level(box.job, frozenset())
    return levels


def render_graph(boxes: Sequence[Box], edges: Sequence[tuple[str, str]]) -> Markup:
    """The SVG (inline markup; its colours come from the page's stylesheet)."""
    if not boxes:
        return Markup("")
    levels = _levels(boxes, edges)
    columns: dict[int, list[Box]] = {}
    for box in boxes:
        columns.setdefault(levels[box.job], []).append(box)
    place: dict[str, tuple[int, int, Box]] = {}
    height = 0
    for column, members in sorted(columns.items()):
        y = PAD
        for box in members:
            place[box.job] = (PAD + column * (BOX_WIDTH + GAP_X), y, box)
            y += box.height + GAP_Y
        height = max(height, y - GAP_Y + PAD)
    width = PAD * 2 + (max(columns) + 1) * BOX_WIDTH + max(columns) * GAP_X
    parts = [
        f'<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" role="img" aria-label="jobs and their needs">'
    ]
    for need, job in edges:
        x1, y1, _ = place[need]
        x2, y2, _ = place[job]
        sx, sy, ex, ey = x1 + BOX_WIDTH, y1 + HEADER // 2, x2, y2 + HEADER // 2
        mid = (sx + ex) / 2
        parts.append(
            f'<path class="edge" data-from="{escape(need)}" data-to="{escape(job)}"'
            f' d="M{sx},{sy} C{mid},{sy} {mid},{ey} {ex},{ey}"/>'
        )
    for x, y, box in place.values():
        parts.append(_box(x, y, box))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every text is escaped)


def _box(x: int, y: int, box: Box) -> str:
    first = box.cells[0]
    anchor = first.task
    title = f"{box.job}: {box.state}"
    out = [
        f'<a href="#job-{escape(anchor)}" class="node-link"><g class="node st-{escape(box.state)}"'
        f' data-job="{escape(box.job)}"><title>{escape(title)}</title>',
        f'<rect x="{x}" y="{y}" width="{BOX_WIDTH}" height="{box.height}" rx="6"/>',
        f'<text class="name" x="{x + 10}" y="{y + 18}">'
        f"{escape(_short(box.job, 24 if box.matrix else 18))}</text>",
    ]
    if not box.matrix:
        out.append(
            f'<text class="dur" data-task="{escape(first.task)}" x="{x + BOX_WIDTH - 8}" y="{y + 18}"'
            f' text-anchor="end">{escape(first.duration)}</text>'
        )
        out[0] = out[0].replace('class="node ', f'data-task="{escape(first.task)}" class="node ', 1)
    for index, cell in enumerate(box.cells if box.matrix else ()):
        cy = y + HEADER + index * CELL
        out.append(
            f'<g class="cell st-{escape(cell.state)}" data-task="{escape(cell.task)}">'
            f"<title>{escape(cell.label)}: {escape(cell.state)}</title>"
            f'<rect x="{x + 6}" y="{cy}" width="{BOX_WIDTH - 12}" height="{CELL - 3}" rx="3"/>'
            f'<text x="{x + 12}" y="{cy + 13}">{escape(_short(cell.label, 20))}</text>'
            f'<text class="dur" data-task="{escape(cell.task)}" x="{x + BOX_WIDTH - 12}" y="{cy + 13}"'
            f' text-anchor="end">{escape(cell.duration)}</text></g>'
        )
    out.append("</g></a>")
    return "".join(out)
