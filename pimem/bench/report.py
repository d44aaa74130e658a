"""`pimem bench`: the original program's report, with correct units and aliases, plus reads."""
from __future__ import annotations

from dataclasses import dataclass

from ..memory.backend import Backend
from .benchmarks import BENCHMARKS, PhaseResult, RunOptions, run_benchmark
from ..memory.info import SystemInfo, system_info
from .machine import watched
from .kernels import get_kernel
from ..firmware.memflags import Alias
from ..units import format_size

#: What `bench` runs: the original three, then the read-back it never measured.
BENCH_SET = ("baseline", "standard", "zerocopy", "read-host", "read-direct")
#: And one latency line per kind of buffer (where the compiled core exists).
LATENCY_SET = ("latency-host", "latency-direct", "latency-coherent", "latency-l1nonalloc")


@dataclass
class BenchReport:
    size: int
    options: RunOptions
    kernel: str
    statistic: str
    info: SystemInfo
    results: list[PhaseResult]
    conditions: dict | None = None   # pimem.bench.machine.conditions_record() of the run

    def get(self, benchmark: str, phase: str) -> PhaseResult | None:
        return next((r for r in self.results if r.benchmark == benchmark and r.phase == phase), None)

    def analysis(self) -> dict[str, float | None]:
        """The ratios the original printed, plus the read price; None where a part failed."""
        st = self.statistic

        def t(b: str, p: str) -> float | None:
            r = self.get(b, p)
            return r.seconds(st) if r is not None and r.verified else None

        base, fill, copy, total = t("baseline", "fill"), t("standard", "fill"), t("standard", "copy"), t("standard", "total")
        zc, rh, rd = t("zerocopy", "write"), t("read-host", "read"), t("read-direct", "read")
        return {
            "zerocopy_speedup_over_standard": total / zc if total and zc else None,
            "copy_share_of_standard": copy / total if copy and total else None,
            "direct_write_vs_cached_fill": base / zc if base and zc else None,
            "standard_fill_vs_baseline": base / fill if base and fill else None,
            "uncached_read_slowdown": rd / rh if rd and rh else None,
        }

    def as_dict(self) -> dict:
        st = self.statistic
        return {
            "size_bytes": self.size, "iterations": self.options.iterations, "warmup": self.options.warmup,
            "kernel": self.kernel, "statistic": st, "system": self.info.as_dict(),
            # Never let a host measurement pass for a Pi's: the text report says so too.
            "host_run": not self.info.is_pi,
            "results": [{
                "benchmark": r.benchmark, "phase": r.phase, "seconds": r.seconds(st),
                "gb_per_s": r.gb_per_s(st), "gib_per_s": r.gib_per_s(st), "bytes": r.bytes,
                "bus_bytes": r.bus_bytes, "status": "PASS" if r.verified else "FAIL", "detail": r.detail,
                "l1_seconds": r.l1_seconds,
                "flags": r.flags, "alias": r.alias,
                "bus": None if r.bus_address is None else f"0x{r.bus_address:08X}",
                "samples_s": list(r.timing.samples_s), "reps": r.timing.reps,
                "overhead_bound": r.timing.overhead_bound,
            } for r in self.results],
            "analysis": self.analysis(),
            "conditions": self.conditions,
        }

    def text(self) -> str:
        st = self.statistic
        emu = not self.info.is_pi
        lines = [
            f"pimem bench: {format_size(self.size)} ({self.size} bytes)",
            "",
            "Configuration",
            f"  Warm-up: {self.options.warmup}   timed iterations: {self.options.iterations}   "
            f"shown: the {st} of the samples",
            f"  Kernel:  {self.kernel}",
            "  Units:   GB/s = 10^9 bytes/s, GiB/s = 2^30 bytes/s; a copy counts its bytes once",
            "",
            "System",
            *("  " + line for line in self.info.lines()),
        ]
        if self.info.emulated:
            lines += [f"  NOTE: emulated machine ({self.info.emulated}): every figure below is the emulator's,",
                      "        not a Raspberry Pi's."]
        elif emu:
            lines += ["  NOTE: host run (emulator backend): the \"GPU\" buffers are host memory; every figure",
                      "        below is a measurement of this host, not of a Raspberry Pi."]
        warning = (self.conditions or {}).get("warning")
        if warning:
            lines.append(f"  NOTE: {warning}")
        lines += ["", "Bus address aliases (bits 31..30 of a bus address)",
                  f"  {'alias':6} {'base':11} {'BCM2835 manual (1.2.1, 1.2.3)':38} firmware wiki (flag)"]
        for a in Alias:
            mark = "  <- the sources disagree" if a.sources_disagree else ""
            lines.append(f"  {str(a):6} 0x{a.base:08X}  {a.manual:38} {a.firmware} ({a.name}){mark}")
        lines += ["", "GPU buffers used"]
        seen = set()
        for r in self.results:
            if r.bus_address is not None and r.benchmark not in seen:
                seen.add(r.benchmark)
                lines.append(f"  {r.benchmark:18} flags {r.flags:18} bus 0x{r.bus_address:08X} -> alias {r.alias}"
                             f" ({Alias.from_bus(r.bus_address).manual})")
        lines += ["", "Results", f"  {'benchmark':32} {'time (ms)':>10} {'GB/s':>8} {'GiB/s':>8} {'bus GB/s':>9}  status"]
        for r in self.results:
            if r.phase == "latency":
                continue
            title = f"{BENCHMARKS[r.benchmark].title.split(' (')[0]}: {r.phase}"
            gb, gib = r.gb_per_s(st), r.gib_per_s(st)
            bus = r.bus_bytes / r.seconds(st) / 1e9 if r.verified else None
            flag = " (overhead-bound)" if r.timing.overhead_bound else ""
            lines.append(f"  {title:32} {r.seconds(st) * 1e3:10.3f} {_num(gb):>8} {_num(gib):>8} {_num(bus):>9}  "
                         f"{'PASS' if r.verified else 'FAIL: ' + r.detail}{flag}")
        lat = [r for r in self.results if r.phase == "latency"]
        if lat:
            lines += ["", f"Latency (random dependent loads through {format_size(self.size)}, one at a time)"]
        for r in lat:
            if not r.verified:
                lines.append(f"  {r.benchmark:20} FAIL: {r.detail}")
                continue
            ns = r.seconds(st) * 1e9
            extra = (f"; an L1 hit takes {r.l1_seconds * 1e9:.1f} ns, so {ns - r.l1_seconds * 1e9:.1f} ns more"
                     if r.l1_seconds is not None else "")
            lines.append(f"  {r.benchmark:20} {ns:8.1f} ns per access{extra}")
        lines += ["", "Analysis", *("  " + line for line in self._analysis_lines(host_run=emu))]
        if any(not r.verified for r in self.results):
            lines.append("  (ratios involving a FAIL are not shown)")
        return "\n".join(lines)

    def _analysis_lines(self, host_run: bool) -> list[str]:
        """What the ratios say; on a host run, only what a host can show, and why the rest is not here."""
        a = self.analysis()
        lines = []
        zc = a["zerocopy_speedup_over_standard"]
        if zc is not None:
            lines.append(f"{_compare('Zero-copy', zc, 'fill-then-copy')} (standard total / zero-copy write)"
                         + (": the cost of the copy's second pass, which a host run does show." if host_run else "."))
        if a["copy_share_of_standard"] is not None:
            lines.append(f"The copy is {a['copy_share_of_standard'] * 100:.1f}% of the standard total.")
        direct, slow = a["direct_write_vs_cached_fill"], a["uncached_read_slowdown"]
        if host_run:
            # The emulator's "GPU" buffers are cached host memory: DIRECT against cached compares a
            # memory with itself, so whatever these ratios are, they are timing noise, not a finding.
            same = ", ".join(f"{name} {ratio:.2f}x" for name, ratio in
                             (("DIRECT write / cached fill", 1 / direct if direct else None),
                              ("DIRECT read / cached read", slow)) if ratio is not None)
            lines += ["What a host run cannot show: on this computer the \"GPU\" buffers are ordinary cached",
                      "memory, so writing or reading them costs what host memory costs" + (f" ({same})." if same else "."),
                      "On a Pi they are mapped uncached; the published Pi 3B figures (notebook 06: the original",
                      "lesson's 64 MiB run, and qmkl's uncached reads, some 30x slower) show that price."]
            return lines
        if direct is not None:
            lines.append(f"{_compare('Writing the DIRECT buffer', direct, 'the cached fill')} "
                         "(baseline fill / zero-copy write).")
        if slow is not None:
            # A slowdown is a speed ratio upside down: reading cached memory is the reference.
            why = ("the price of zero-copy for data the CPU reads back" if slow > 1 + SAME_WITHIN
                   else "DIRECT read / cached read")
            lines.append(f"{_compare('Reading the DIRECT buffer', 1 / slow, 'reading cached host memory')} "
                         f"({why}).")
        return lines


#: Speed ratios closer to 1 than this are reported as the same speed: timing noise is larger.
SAME_WITHIN = 0.02


def _compare(subject: str, ratio: float, other: str) -> str:
    """'SUBJECT is faster than OTHER: 1.52x as fast' and the like; ratio > 1 means faster.

    Decided on the ratio itself, not on its rounded text, so a 0.996 never
    reads "1.00x ... slower".
    """
    if abs(ratio - 1) <= SAME_WITHIN:
        return f"{subject} is about as fast as {other}: {ratio:.3f}x, within {SAME_WITHIN:.0%}"
    if ratio > 1:
        return f"{subject} is faster than {other}: {ratio:.2f}x as fast"
    return f"{subject} is slower than {other}: {ratio:.2f}x the speed, taking {1 / ratio:.2f}x as long"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def bench(backend: Backend, size: int, *, kernel: str | None = None, options: RunOptions | None = None,
          statistic: str = "median", benchmarks: tuple[str, ...] | None = None) -> BenchReport:
    from .kernels import DEFAULT_KERNEL, KERNELS

    if benchmarks is None:
        benchmarks = BENCH_SET + (LATENCY_SET if "c-loop" in KERNELS else ())
    kname = kernel or DEFAULT_KERNEL
    k = get_kernel(kname)
    opts = options or RunOptions()
    results: list[PhaseResult] = []
    with watched(backend) as conditions:
        for name in benchmarks:
            results += run_benchmark(name, size, kernel=k, backend=backend, options=opts)
    return BenchReport(size, opts, kname, statistic, system_info(backend), results, conditions)
