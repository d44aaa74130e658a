"""The memory layer: GPU memory as a Python object.

GpuBuffer (allocate, lock, map through /dev/mem, numpy views), the ledger that makes leaks recoverable,
the backend choice (PIMEM_BACKEND: pi or emulator), what this machine is (info) and the self-test. It may
import the firmware layer and the foundation modules (exc, safefs, paths).
"""
