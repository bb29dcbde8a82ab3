"""Intel TDX attestation: quote parsing, DCAP verification against Intel PCS collateral, REPORTDATA binding
and a PCS client. (A simulated platform for development and tests is in :mod:`atlas_log.testing.simulate`.)

>>> # verdict = verify_quote(quote_bytes, collateral_from_dir("case"), now=int(time.time()))
"""

from atlas_log.tdx.binding import KEY_TAG, PAYLOAD_TAG, key_report_data, payload_report_data
from atlas_log.tdx.collateral import Collateral, collateral_from_dir
from atlas_log.tdx.pki import INTEL_ROOT_SPKI_SHA256
from atlas_log.tdx.policy import Policy
from atlas_log.tdx.quote import Quote, parse_quote
from atlas_log.tdx.verdict import Verdict
from atlas_log.tdx.verification import verify_quote
from atlas_log.tdx.verification_cache import VerificationCache

__all__ = [
    "INTEL_ROOT_SPKI_SHA256",
    "KEY_TAG",
    "PAYLOAD_TAG",
    "Collateral",
    "Policy",
    "Quote",
    "Verdict",
    "VerificationCache",
    "collateral_from_dir",
    "key_report_data",
    "parse_quote",
    "payload_report_data",
    "verify_quote",
]
