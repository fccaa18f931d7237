"""The README's fault-matrix table is what the matrix asserts: every cell is there and filled, each
says what `test_matrix.expected` says (so a passing run of the matrix is a fresh run's table), and the
matrix's parametrization covers every cell of it."""

from __future__ import annotations

from . import test_matrix
from .matrix import CELLS, cell_id
from .render_table import README, parse, replace, table
from .test_matrix import XFAIL, expected


def test_every_cell_of_the_readme_table_is_filled_and_says_what_the_matrix_expects():
    shown = parse(README.read_text())
    assert set(shown) == {cell_id(*c) for c in CELLS}
    assert all(shown.values()), [k for k, v in shown.items() if not v]
    for cell in CELLS:
        if cell not in XFAIL:  # an xfail'd cell shows what a run recorded, not what it should do
            assert shown[cell_id(*cell)] == expected(*cell).cell(), cell_id(*cell)


def test_the_parametrization_covers_every_cell_once():
    params = next(m for m in test_matrix.test_fault_cell.pytestmark if m.name == "parametrize").args[1]
    ids = [p.id for p in params]
    assert sorted(ids) == sorted(cell_id(*c) for c in CELLS) and len(set(ids)) == len(ids) == 150


def test_the_rendered_table_reads_back_and_replaces_only_its_block():
    cells = {cell_id(*c): expected(*c).cell() for c in CELLS}
    text = "intro\n<!-- fault-matrix:start -->\nold\n<!-- fault-matrix:end -->\nrest\n"
    new = replace(text, table(cells))
    assert parse(new) == cells
    assert new.startswith("intro\n<!-- fault-matrix:start -->\n| fault |") and new.endswith(
        "|\n<!-- fault-matrix:end -->\nrest\n")
