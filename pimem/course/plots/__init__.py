"""Figures for the notebooks: every function draws with matplotlib's object-oriented API and returns (or draws
into) a ``Figure`` whose footer gives the provenance of its data; nothing here calls ``plt.show``.
Modules by job: ``style`` (colours, markers, fonts, footer, axes), ``curves``, ``compare``, ``maps``."""
from __future__ import annotations

from .compare import memory_wall_generations, published_comparison, report_bars, report_provenance
from .curves import (BOARDS, BoardFacts, bandwidth_curve, cache_regions, latency_curve, measured_latency_curve,
                     peak_line, summarize_points)
from .maps import alias_map, mountain_heatmap, mountain_surface
from .style import (BENCHMARK_STYLES, FOOTER_FONT, FOOTER_GID, GB, MIN_FONT, OKABE_ITO, STATISTICS,
                    VARIANT_FILLSTYLES, VARIANT_LINESTYLES, _display_ready, _FALLBACK_COLOURS, add_provenance,
                    benchmark_style, data_label, footer_text, host_title, is_host, new_axes, place_point_labels,
                    run_provenance, size_axis, size_label)

__all__ = [
    # style
    "BENCHMARK_STYLES", "FOOTER_FONT", "FOOTER_GID", "GB", "MIN_FONT", "OKABE_ITO", "STATISTICS",
    "VARIANT_FILLSTYLES", "VARIANT_LINESTYLES", "_FALLBACK_COLOURS", "_display_ready", "add_provenance",
    "benchmark_style", "data_label", "footer_text", "host_title", "is_host", "new_axes", "place_point_labels",
    "run_provenance", "size_axis", "size_label",
    # curves
    "BOARDS", "BoardFacts", "bandwidth_curve", "cache_regions", "latency_curve", "measured_latency_curve",
    "peak_line", "summarize_points",
    # compare
    "memory_wall_generations", "published_comparison", "report_bars", "report_provenance",
    # maps
    "alias_map", "mountain_heatmap", "mountain_surface",
]
