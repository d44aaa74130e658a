"""Maps: the bus aliases of one RAM, and the memory mountain (heat map and surface)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ...exc import UsageError
from .style import MIN_FONT, add_provenance, host_title, new_axes, new_figure, size_label
from ...firmware.board import PI3B
from ...units import MiB


# --- the memory map: one RAM, four bus aliases, two processors -----------------------

def _arm_row(ax: Axes, y_arm: float, split: float, top: float, peripheral_base: int | None) -> None:
    """The ARM's row: its cached RAM, the GPU memory it maps non-cached, and the peripheral window."""
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((0, y_arm + 0.15), split, 0.7, facecolor="#c8e6c9", edgecolor="0.4", lw=0.8,
                           gid="arm:cached"))
    ax.text(split / 2, y_arm + 0.5, "ARM, Linux's RAM: through the ARM's own L1 and L2 (cached)",
            ha="center", va="center", fontsize=8.5)
    periph = top if peripheral_base is None else peripheral_base / MiB
    if not split < periph <= top:
        periph = top
    ax.add_patch(Rectangle((split, y_arm + 0.15), periph - split, 0.7, facecolor="#ffcdd2", edgecolor="0.4",
                           lw=0.8, hatch="//", gid="arm:noncached"))
    ax.annotate("ARM, GPU memory via /dev/mem:\nnon-cached, whatever the flag", xy=(split + (periph - split) / 2, y_arm + 0.85),
                xytext=(split - (420 if periph < top else 260), y_arm + 1.55), fontsize=8.5, ha="center",
                arrowprops={"arrowstyle": "->", "color": "0.3"})
    if periph < top:
        ax.add_patch(Rectangle((periph, y_arm + 0.15), top - periph, 0.7, facecolor="0.35", edgecolor="0.4",
                               lw=0.8, gid="arm:peripherals"))
        ax.annotate(f"ARM, 0x{int(periph * MiB):08X} and up:\nperipheral registers, not RAM",
                    xy=(periph + (top - periph) / 2, y_arm + 0.85),
                    xytext=(split - 110, y_arm + 1.55), fontsize=8.5, ha="center",
                    arrowprops={"arrowstyle": "->", "color": "0.3"})


def alias_map(arm_bytes: int = PI3B.ram_bytes - PI3B.default_gpu_mem, ram_bytes: int = PI3B.ram_bytes, *,
              board: str = PI3B.name, peripheral_base: int | None = PI3B.peripheral_base) -> Figure:
    """One physical RAM seen through the four bus aliases, with the ARM/VideoCore split.

    Each VideoCore row is a window of bus addresses onto the same RAM; its label says how
    the VideoCore's L2 treats it (the manual's words). The ARM row shows the ARM's own
    path: its RAM through its own L1 and L2 (the BCM2836/7 and later do not use the
    VideoCore's L2), and the GPU memory pimem maps through /dev/mem as non-cached memory
    whichever alias the flag picked, up to ``peripheral_base``: from there to the top
    (0x3F000000-0x3FFFFFFF on a Pi 2/3) the ARM's physical addresses reach the
    peripherals' registers, not RAM (BCM2835 ARM Peripherals 1.2.3; bcm2837.dtsi), so that
    part of gpu_mem is no memory the ARM can map. ``None`` leaves the window out.
    """
    from matplotlib.patches import Rectangle

    from ...firmware.memflags import Alias

    if not 0 < arm_bytes < ram_bytes:
        raise UsageError(f"arm_bytes must lie inside the RAM (0..{ram_bytes}), got {arm_bytes}")
    fig, ax = new_axes(size=(10.0, 5.2))
    split = arm_bytes / MiB
    top = ram_bytes / MiB
    rows = [(f"{a} alias ({a.name}), bus 0x{a.base:08X}: VideoCore {a.manual}",
             "#bbdefb" if a.value == 0xC else "#e3f2fd", a.name)
            for a in sorted(Alias, key=lambda a: a.value)]
    for y, (label, colour, gid) in enumerate(rows):
        ax.add_patch(Rectangle((0, y + 0.15), top, 0.7, facecolor=colour, edgecolor="0.4", lw=0.8,
                               gid=f"alias:{gid}"))
        ax.text(top / 2, y + 0.5, label, ha="center", va="center", fontsize=8.5)
    y_arm = len(rows) + 0.4
    _arm_row(ax, y_arm, split, top, peripheral_base)
    y_ram = -1.0
    ax.add_patch(Rectangle((0, y_ram + 0.15), split, 0.7, facecolor="0.92", edgecolor="0.3", gid="ram:arm"))
    ax.add_patch(Rectangle((split, y_ram + 0.15), top - split, 0.7, facecolor="0.75", edgecolor="0.3", gid="ram:gpu"))
    ax.text(split / 2, y_ram + 0.5, f"physical RAM: Linux's {split:g} MiB", ha="center", va="center", fontsize=8.5)
    ax.text(split + (top - split) / 2, y_ram + 0.5, f"gpu_mem\n{top - split:g} MiB", ha="center", va="center",
            fontsize=MIN_FONT)
    ax.axvline(split, color="k", ls=":", lw=1, gid="split")
    ax.set_xlim(0, top)
    ax.set_ylim(y_ram, y_arm + 2.2)
    ax.set_yticks([])
    ax.set_xlabel("physical address (MiB): every row is the same RAM; bus address = alias base + physical address")
    ax.set_title(f"One memory, four VideoCore windows, two ARM paths ({board})")
    add_provenance(fig, [
        "VideoCore rows: BCM2835 ARM Peripherals 1.2.1 and 1.2.3 (the firmware wiki swaps the 0x4 and 0x8 descriptions); "
        "they govern the VideoCore's L2 only",
        "ARM row: read from the kernel source (arch/arm/mm/mmu.c, arch/arm64/mm/mmu.c); "
        "BCM2836/7 and later: the ARM has its own L2 (config_txt/memory.adoc); an inference until a live run",
        "peripheral window: ARM physical 0x3F000000-0x3FFFFFFF on a Pi 2/3 (BCM2835 ARM Peripherals 1.2.3; "
        "Linux bcm2837.dtsi soc ranges)",
    ])
    return fig


# --- the memory mountain ------------------------------------------------------------

def _mountain_grid(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    grid = frame.pivot(index="stride_words", columns="size_bytes", values="gb_per_s").sort_index()
    return grid.columns.to_numpy(float), grid.index.to_numpy(float), grid.to_numpy(float)


def _mountain_title(meta: Mapping[str, Any], view: str) -> str:
    host = not meta.get("machine", {}).get("is_pi", False)
    return host_title(f"Memory mountain ({meta.get('buffer_kind', 'host')} memory), {view}", host)


def mountain_levels(frame: pd.DataFrame, meta: Mapping[str, Any]) -> list[tuple[str, int, int]]:
    """The ridges of a mountain: (name, first size, last size) of each cache level and of the memory beyond.

    A level's ridge is the working sets that fit in it and not in the level below; the caches come from the
    recording's sidecar (a host's own, from sysfs), or a Pi 3B's documented L1 and L2 for a Pi run.
    """
    machine = meta.get("machine", {})
    caches = sorted({(int(c["level"]), int(c["bytes"])) for c in machine.get("caches", [])
                     if c.get("type") != "Instruction"})
    if not caches and machine.get("is_pi"):
        caches = [(1, PI3B.l1d_bytes), (2, PI3B.l2_bytes)]
    sizes = sorted(int(v) for v in frame["size_bytes"].unique())
    out: list[tuple[str, int, int]] = []
    below = 0
    for level, nbytes in caches:
        inside = [v for v in sizes if below < v <= nbytes]
        if inside:
            out.append((f"L{level}", inside[0], inside[-1]))
        below = nbytes
    beyond = [v for v in sizes if v > below]
    if beyond:
        out.append(("DRAM", beyond[0], beyond[-1]))
    return out


def mountain_heatmap(frame: pd.DataFrame, meta: Mapping[str, Any]) -> Figure:
    """The mountain from above: read GB/s for each working-set size (x) and stride (y)."""
    sizes, strides, gbps = _mountain_grid(frame)
    fig, ax = new_axes(size=(8.0, 4.8))
    mesh = ax.pcolormesh(np.arange(len(sizes) + 1), np.arange(len(strides) + 1), gbps, cmap="viridis")
    ax.set_xticks(np.arange(len(sizes)) + 0.5, [size_label(v) for v in sizes], rotation=45, ha="right",
                  fontsize=MIN_FONT)
    ax.set_yticks(np.arange(len(strides)) + 0.5, [f"{int(k)}" for k in strides], fontsize=MIN_FONT)
    ax.set_xlabel("working set (bytes read over and over)")
    ax.set_ylabel("stride (8-byte words)")
    fig.colorbar(mesh, ax=ax, label="read bandwidth, GB/s (10^9 B/s)")
    for name, first, last in mountain_levels(frame, meta):
        i0, i1 = list(sizes).index(first), list(sizes).index(last) + 1
        if i1 < len(sizes):
            ax.axvline(i1, color="w", lw=1.5, ls="--", gid=f"ridge-edge:{name}")
        ax.text((i0 + i1) / 2, len(strides) + 0.15, f"{name} ridge", ha="center", va="bottom", fontsize=9,
                gid=f"ridge:{name}")
    ax.set_title(_mountain_title(meta, "heat map"), pad=18)
    add_provenance(fig, [f"{meta.get('machine', {}).get('description', 'machine not recorded')}",
                         "bytes counted: the 8-byte words read (CS:APP's convention); median of the timed regions"])
    return fig


def mountain_surface(frame: pd.DataFrame, meta: Mapping[str, Any]) -> Figure:
    """The mountain as a 3-D surface (CS:APP figure 6.41's view): size and stride against read GB/s."""
    sizes, strides, gbps = _mountain_grid(frame)
    fig = new_figure((8.0, 5.6))
    ax = fig.add_subplot(projection="3d")
    x, y = np.meshgrid(np.log2(sizes), strides)
    ax.plot_surface(x, y, gbps, cmap="viridis", edgecolor="0.3", linewidth=0.2, alpha=0.9)
    top = float(np.nanmax(gbps))
    for name, first, last in mountain_levels(frame, meta):
        cols = [i for i, v in enumerate(sizes) if first <= v <= last]
        mid = np.log2(sizes[cols]).mean()
        z = float(np.nanmax(gbps[0, cols]))     # the ridge's crest, at stride 1
        ax.text(mid, strides[0], z + 0.08 * top, f"{name} ridge", ha="center", fontsize=9, zorder=10,
                gid=f"ridge:{name}", bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="0.6", alpha=0.85))
    ax.set_xticks(np.log2(sizes)[::2], [size_label(v) for v in sizes[::2]], fontsize=MIN_FONT)
    ax.set_xlabel("working set", fontsize=8)
    ax.set_ylabel("stride (words)", fontsize=8)
    ax.set_zlabel("read GB/s", fontsize=8)
    ax.view_init(elev=22, azim=-62)    # from the small strides: the ridges face the reader, large sets to the right
    ax.set_title(_mountain_title(meta, "surface"), fontsize=10)
    add_provenance(fig, [f"{meta.get('machine', {}).get('description', 'machine not recorded')}"])
    return fig
