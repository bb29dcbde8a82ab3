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

    OCSP responses given beside the evidence are always judged (a revoked certificate, one the responder does
    not know, or a response that is not to be believed fails). ``require_ocsp`` also rejects a certificate no
    response speaks for (``ocsp_missing``); ``allow_on_hold`` accepts a certificate revoked with reason
    certificateHold (a suspension NVIDIA may lift) instead of failing it as ``certificate_revoked``.
    """

    require_driver_rim: bool = False
    require_vbios_rim: bool = False
    check_rim_signatures: bool = True
    require_ocsp: bool = False
    allow_on_hold: bool = False
