"""The relying party's appraisal policy for GPU evidence: what NVIDIA's verifier leaves to the caller."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Policy"]


@dataclass(frozen=True, slots=True)
class Policy:
    """Which verified GPU evidence to accept.

    The default accepts evidence whose signature, nonce, FWID and device chain hold, and checks every RIM it
    is given. ``require_driver_rim`` / ``require_vbios_rim`` reject evidence verified without that RIM
    (codes ``driver_rim_missing`` / ``vbios_rim_missing``): only then are the measurements appraised at
    all. ``check_rim_signatures=False`` skips the RIMs' XML signatures (never their chains or versions); it
    exists to reproduce NVIDIA's own test of measurement mismatches, and no production policy should use it.
    """

    require_driver_rim: bool = False
    require_vbios_rim: bool = False
    check_rim_signatures: bool = True
