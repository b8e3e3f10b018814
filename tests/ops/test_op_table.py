"""The op table (op_table.py, rendered into docs/op_table.md) and the tests agree on its rows."""
from __future__ import annotations

import glob
import importlib
import os

from .op_table import ROWS


def _covered_rows() -> set:
    """Rows named by `covers` marks on the test functions of tests/ops (incl. parameters)."""
    rows = set()
    here = os.path.dirname(os.path.abspath(__file__))
    for path in sorted(glob.glob(os.path.join(here, "test_*.py"))):
        module = importlib.import_module(f"{__package__}.{os.path.basename(path)[:-3]}")
        for name, fn in vars(module).items():
            for mark in getattr(fn, "pytestmark", []) if name.startswith("test_") else []:
                if mark.name == "covers":
                    rows.update(mark.args)
                elif mark.name == "parametrize":
                    for param in mark.args[1]:
                        rows.update(a for m in getattr(param, "marks", ()) if m.name == "covers"
                                    for a in m.args)
    return rows


def test_every_row_has_a_test_and_every_test_a_row():
    table = {row for row, *_ in ROWS}
    covered = _covered_rows()
    assert not table - covered, f"op table rows without a test: {sorted(table - covered)}"
    assert not covered - table, f"tests cover rows missing from the table: " \
                                f"{sorted(covered - table)}"


def test_rows_are_the_issues_op_table():
    """Issue 4's 70 rows and the 12 ops torch-mlir lowers only through TMTensor (issue 11)."""
    assert len(ROWS) == len({row for row, *_ in ROWS}) == 82
