"""The benchmark layer: timing CPU writes and reads, and keeping the results.

Timers, fill/copy/read kernels (numpy, libc and the compiled C core in csrc/), the benchmarks and sweeps,
the pass/fail report, the memory mountain, and the recording format (data, with its schemas/). It may
import the memory and firmware layers; it never imports matplotlib or ipywidgets.
"""
