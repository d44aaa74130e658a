"""Tables as a notebook shows them: text left-aligned, numbers right-aligned, no row index.

pandas' own display right-aligns every column and prints a 0..n index, which is noise in a table
of words (a course outline, a message annotated word by word). `show(frame)` keeps the frame as it
is and displays it cleanly. The alignment is written on each cell (a style attribute), because
JupyterLab drops the <style> blocks of a notebook it does not trust, and a student's copy is not.
"""
from __future__ import annotations

import re

import pandas as pd
from pandas.api.types import is_numeric_dtype

_CELL = re.compile(r"<(td|th)>")


class Table:
    """A frame shown without its index: HTML in a notebook, plain text in a terminal."""

    def __init__(self, frame: pd.DataFrame, precision: int = 3) -> None:
        self.frame = frame
        self.precision = precision

    def _repr_html_(self) -> str:
        align = ["right" if is_numeric_dtype(self.frame[c]) else "left" for c in self.frame.columns]
        text = self.frame.to_html(index=False, border=0, float_format=lambda v: f"{v:.{self.precision}g}")
        rows = text.split("<tr")
        for i, row in enumerate(rows[1:], start=1):
            cells = iter(align)
            rows[i] = _CELL.sub(lambda m: f'<{m.group(1)} style="text-align: {next(cells, "left")}">', row)
        return "<tr".join(rows)

    def __repr__(self) -> str:
        return self.frame.to_string(index=False)


def show(frame: pd.DataFrame, precision: int = 3) -> Table:
    """Display `frame` as a table to read: text left-aligned, no row index (the frame is unchanged)."""
    return Table(frame.reset_index(drop=True), precision)
