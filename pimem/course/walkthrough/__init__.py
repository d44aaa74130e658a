"""Helpers that keep the course's notebook cells thin: one module per notebook.

start_here (00-start-here), aliases (02-unified-memory-and-aliases), the_mailbox (03-the-mailbox),
baseline (04-baseline).
"""
from __future__ import annotations

from .aliases import alias_table, decode_table, flag_survey
from .baseline import clock_table
from .the_mailbox import (
    QUERY_TAGS,
    Exchange,
    LeakDemo,
    Lifecycle,
    Step,
    annotate,
    exchange,
    leak_demo,
    lifecycle,
    send,
    side_by_side,
)
from .start_here import course_outline, machine_table, this_process

__all__ = [
    "QUERY_TAGS", "Exchange", "LeakDemo", "Lifecycle", "Step", "alias_table", "annotate", "clock_table", "course_outline",
    "decode_table", "exchange", "flag_survey", "leak_demo", "lifecycle", "machine_table", "send",
    "side_by_side",
]
