"""Tables as a notebook shows them: text left-aligned, numbers right-aligned, no row index.

pandas' own display right-aligns every column and prints a 0..n index, which is noise in a table
of words (a course outline, a message annotated word by word). `show(frame)` keeps the frame as it
is and displays it cleanly, through pandas' Styler.
"""
from __future__ import annotations

import hashlib

import pandas as pd
from pandas.api.types import is_numeric_dtype


class Table:
    """A frame shown without its index: HTML in a notebook, plain text in a terminal."""

    def __init__(self, frame: pd.DataFrame, precision: int = 3) -> None:
        self.frame = frame
        self.precision = precision

    def _repr_html_(self) -> str:
        text = [c for c in self.frame.columns if not is_numeric_dtype(self.frame[c])]
        styler = self.frame.style.hide(axis="index").format(precision=self.precision)
        styler = styler.set_properties(subset=text, **{"text-align": "left"})
        styler = styler.set_table_styles([{"selector": "th", "props": [("text-align", "left")]}])
        # The Styler's element ids are random by default; from the content, a re-render gives the same HTML.
        digest = hashlib.sha1(self.frame.to_csv().encode("utf-8")).hexdigest()[:10]
        return styler.set_uuid(f"pimem{digest}").to_html()

    def __repr__(self) -> str:
        return self.frame.to_string(index=False)


def show(frame: pd.DataFrame, precision: int = 3) -> Table:
    """Display `frame` as a table to read: text left-aligned, no row index (the frame is unchanged)."""
    return Table(frame.reset_index(drop=True), precision)
