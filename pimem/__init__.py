"""pimem: GPU memory on the Raspberry Pi through the VideoCore mailbox, for teaching.

Layers, each using only the one below it:
protocol (message bytes) -> transport (/dev/vcio or the emulator) ->
mailbox (one call per tag) -> buffer (GpuBuffer) -> benchmarks -> plots,
widgets -> notebooks.
"""
from .backend import get_backend
from .buffer import GpuBuffer
from .exc import PimemError
from .memflags import Alias, BusAddress, MemFlag, bus_to_phys

__version__ = "0.1.0"

__all__ = ["Alias", "BusAddress", "GpuBuffer", "MemFlag", "PimemError", "bus_to_phys", "get_backend", "__version__"]
