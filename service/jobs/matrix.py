"""A job's matrix as its cells, the way GitHub Actions users know it.

The cells are the product of the axes, minus every cell an ``exclude`` entry matches (all of
its keys equal), then each ``include`` entry is added to every cell whose original axis values
it does not contradict, or becomes a cell of its own when it fits none. Values compare and
read as text (``3.12`` and ``"3.12"`` are the same value).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from service.jobs.expressions import text_value
from service.jobs.options import Matrix

Cell = dict[str, str]


class MatrixTooLarge(ValueError):
    pass


def cell_bound(matrix: Matrix) -> int:
    """At most how many cells ``matrix`` has, computed without expanding it."""
    total = 1 if matrix.axes else 0
    for values in matrix.axes.values():
        total *= len(values)
    return total + len(matrix.include)


def _matches(cell: Mapping[str, str], entry: Mapping[str, str]) -> bool:
    return all(key in cell and cell[key] == value for key, value in entry.items())


def expand(matrix: Matrix, limit: int) -> list[Cell]:
    """The cells of ``matrix`` in order; :class:`MatrixTooLarge` beyond ``limit`` cells."""
    bound = cell_bound(matrix)
    if bound > limit:
        raise MatrixTooLarge(f"the matrix has up to {bound} cells; the limit is {limit}")
    axes = {name: [text_value(v) for v in values] for name, values in matrix.axes.items()}
    excludes = [{k: text_value(v) for k, v in entry.items()} for entry in matrix.exclude]
    originals: list[Cell] = []
    if axes:
        for combination in itertools.product(*axes.values()):
            cell = dict(zip(axes, combination, strict=True))
            if not any(_matches(cell, entry) for entry in excludes):
                originals.append(cell)
    cells = [dict(cell) for cell in originals]
    extra: list[Cell] = []
    for raw in matrix.include:
        entry = {k: text_value(v) for k, v in raw.items()}
        fitted = False
        for original, cell in zip(originals, cells, strict=True):
            if all(original[k] == v for k, v in entry.items() if k in original):
                cell.update(entry)
                fitted = True
        if not fitted:
            extra.append(entry)
    unique: list[Cell] = []
    seen: set[frozenset[tuple[str, str]]] = set()  # equal cells, whatever their key order
    for cell in [*cells, *extra]:
        key = frozenset(cell.items())
        if key not in seen:
            seen.add(key)
            unique.append(cell)
    return unique


def cell_label(cell: Mapping[str, str]) -> str:
    """``python=3.12, os=fedora-41``, for commit status contexts."""
    return ", ".join(f"{key}={value}" for key, value in cell.items())
