"""Development and test helpers: a simulated TDX platform, a simulated NVIDIA GPU and demo submissions.

Nothing on a production path imports this package; the server's development mode and the CLI's ``demo``
command import it where they need it. A simulated platform or GPU is not a TEE and proves nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atlas_log.testing.simulated_gpu import SimulatedGpu, serialize_gpu_evidence

__all__ = ["SimulatedGpu", "serialize_gpu_evidence"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: the GPU simulator brings signxml and lxml, which the TDX simulator's users
    # (``make run`` without GPUs, ``atlas-log demo``) would otherwise load for nothing.
    if name in __all__:
        from atlas_log.testing import simulated_gpu

        return getattr(simulated_gpu, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
