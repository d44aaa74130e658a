"""Figures for the notebooks: every function draws with matplotlib's object-oriented API and returns (or draws
into) a ``Figure`` whose footer gives the provenance of its data; nothing here calls ``plt.show``.
Modules by job: ``style`` (colours, markers, fonts, footer, axes), ``curves``, ``compare``, ``classes``,
``maps``."""
from __future__ import annotations

from .classes import PUBLISHED_MARKERS, class_panels
from .compare import course_published, published_comparison, report_bars, report_provenance
from .curves import (BOARDS, BoardFacts, bandwidth_curve, cache_regions, latency_curve, measured_latency_curve,
                     peak_line, summarize_points)
from .pi import (HOST_RECORDING, PI3_RECORDINGS, SERIES, cache_line_stride, demand_ceiling_achieved,
                 draw_prediction, generations_in_cycles, host_bandwidth, host_cache_line, pi_bandwidth, plain_label,
                 zero_copy_payoff)
from .maps import alias_map, mountain_heatmap, mountain_levels, mountain_surface
from .style import (BENCHMARK_STYLES, FALLBACK_COLOURS, FOOTER_FONT, FOOTER_GID, GB, MIN_FONT, OKABE_ITO,
                    STATISTICS, VARIANT_FILLSTYLES, VARIANT_LINESTYLES, Source, add_provenance, benchmark_style,
                    data_label, display_ready, footer_text, host_title, new_axes, place_point_labels,
                    run_provenance, size_axis, size_label, sources)

__all__ = [
    # style
    "BENCHMARK_STYLES", "FALLBACK_COLOURS", "FOOTER_FONT", "FOOTER_GID", "GB", "MIN_FONT", "OKABE_ITO", "STATISTICS",
    "VARIANT_FILLSTYLES", "VARIANT_LINESTYLES", "Source", "add_provenance", "benchmark_style", "data_label",
    "display_ready", "footer_text", "host_title", "new_axes", "place_point_labels", "run_provenance", "size_axis",
    "size_label", "sources",
    # curves
    "BOARDS", "BoardFacts", "bandwidth_curve", "cache_regions", "latency_curve", "measured_latency_curve",
    "peak_line", "summarize_points",
    # compare
    "course_published", "published_comparison", "report_bars", "report_provenance",
    # classes
    "PUBLISHED_MARKERS", "class_panels",
    # pi
    "HOST_RECORDING", "PI3_RECORDINGS", "SERIES", "cache_line_stride", "demand_ceiling_achieved", "draw_prediction",
    "generations_in_cycles", "host_bandwidth", "host_cache_line", "pi_bandwidth", "plain_label", "zero_copy_payoff",
    # maps
    "alias_map", "mountain_heatmap", "mountain_levels", "mountain_surface",
]
