"""Self-checks and data helpers for the lab notebooks (notebooks/labs/): one module per lab, each with
its checks, their messages and the data it works on (measured live, or recorded in data/: never invented).
The machinery every check shares (CheckResult, hints, explaining a student's exception) is in checks.py.
"""
from __future__ import annotations

from ...units import GiB, KiB, MiB
from .checks import Case, CheckFailed, CheckResult, HINT_LEVELS, Slip, attempt
from .lab1_addresses import (ALIAS_MASK, WRONG_CONVERSION_OPTIONS, check_aligned_pieces, check_alias,
                             check_bus_to_phys, check_region, check_wrong_conversion)
from .lab2_predict_measure import (PI3B_BUS_BITS, PI3B_L1D, PI3B_L2, PI3B_SDRAM_MHZ, check_cache_level,
                                   check_efficiency, check_fill_time, check_peak_bandwidth, fill_measurements,
                                   host_recording)
from .lab3_crossover import check_crossover, check_standard_in_cache, crossover_frame, crossover_size
from .lab4_mailbox_by_hand import (LedgeredTransport, check_build_message, check_parse_answer, check_round_trip,
                                   ledgered_transport, reference_message)
from .lab5_when_zero_copy_hurts import (RATE_SOURCES, WORKLOADS, check_choose, check_transfer_ms, check_workloads,
                                        choose_buffer, costs_ms, fair_rates, qmkl_rates, read_rates, transfer_ms,
                                        verdicts)

__all__ = [
    # shared: the result, the notebook helper, units and hint levels
    "CheckResult", "CheckFailed", "Case", "Slip", "attempt", "KiB", "MiB", "GiB", "HINT_LEVELS",
    # lab 1: addresses
    "check_alias", "check_bus_to_phys", "check_region", "check_wrong_conversion", "WRONG_CONVERSION_OPTIONS",
    "ALIAS_MASK", "check_aligned_pieces",
    # lab 2: predict, then measure
    "check_peak_bandwidth", "check_fill_time", "check_cache_level", "check_efficiency", "fill_measurements",
    "host_recording", "PI3B_SDRAM_MHZ", "PI3B_BUS_BITS", "PI3B_L1D", "PI3B_L2",
    # lab 3: the crossover
    "check_crossover", "check_standard_in_cache", "crossover_size", "crossover_frame",
    # lab 4: a mailbox message by hand
    "check_build_message", "check_parse_answer", "check_round_trip", "reference_message", "ledgered_transport",
    "LedgeredTransport",
    # lab 5: when zero-copy hurts
    "check_transfer_ms", "check_choose", "check_workloads", "qmkl_rates", "fair_rates", "verdicts", "read_rates",
    "transfer_ms", "costs_ms", "choose_buffer", "WORKLOADS", "RATE_SOURCES",
]
