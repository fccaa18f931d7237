"""Turn the fault matrix a test run recorded into the README's table.

    LLMRELAY_FAULT_MATRIX_OUT=/tmp/matrix.json .venv/bin/python -m pytest -q tests/faults
    .venv/bin/python -m tests.faults.render_table /tmp/matrix.json        # rewrites README.md
    .venv/bin/python -m tests.faults.render_table /tmp/matrix.json --print  # only prints the table

The table goes between `<!-- fault-matrix:start -->` and `<!-- fault-matrix:end -->`: one row per fault,
one column per provider and plain/stream.  Every cell must have been recorded (a partial run is refused).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .matrix import CELLS, FAULTS, MODES, PROVIDERS, Seen, cell_id

START, END = "<!-- fault-matrix:start -->", "<!-- fault-matrix:end -->"
README = Path(__file__).resolve().parents[2] / "README.md"


def cells_of(record: dict[str, dict]) -> dict[str, str]:
    """cell id -> the table's line, from a recorded run (`Seen` as dicts); refuses a partial one."""
    missing = [cell_id(*c) for c in CELLS if cell_id(*c) not in record]
    if missing:
        raise ValueError(f"{len(missing)} cell(s) not recorded, e.g. {', '.join(missing[:3])}: run the whole matrix")
    return {cell_id(*c): Seen(**record[cell_id(*c)]).cell() for c in CELLS}


def table(cells: dict[str, str]) -> str:
    head = ["fault"] + [f"{p} {m}" for p in PROVIDERS for m in MODES]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for fault, (label, _) in FAULTS.items():
        row = [label] + [cells[cell_id(p, fault, m)] for p in PROVIDERS for m in MODES]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def parse(text: str) -> dict[str, str]:
    """The README's table back into cell id -> line (what `table` wrote)."""
    block = between(text)
    rows = [line for line in block.splitlines() if line.startswith("| ")][2:]  # past the head and rule
    labels = {label: fault for fault, (label, _) in FAULTS.items()}
    columns = [(p, m) for p in PROVIDERS for m in MODES]
    out = {}
    for line in rows:
        label, *values = (v.strip() for v in line.strip().strip("|").split(" | "))
        for (p, m), value in zip(columns, values, strict=True):
            out[cell_id(p, labels[label], m)] = value
    return out


def between(text: str) -> str:
    start, end = text.index(START) + len(START), text.index(END)
    return text[start:end]


def replace(text: str, new_table: str) -> str:
    """`text` with the block between the markers replaced by `new_table`."""
    start, end = text.index(START) + len(START), text.index(END)
    return text[:start] + "\n" + new_table + "\n" + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("record", type=Path, help="the JSON a run wrote to $LLMRELAY_FAULT_MATRIX_OUT")
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--print", action="store_true", help="print the table, leave the README alone")
    args = parser.parse_args(argv)
    new_table = table(cells_of(json.loads(args.record.read_text())))
    if args.print:
        print(new_table)
    else:
        args.readme.write_text(replace(args.readme.read_text(), new_table))
        print(f"{args.readme}: fault matrix updated ({len(CELLS)} cells)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
