"""Intel TDX attestation: quote parsing, DCAP verification against Intel PCS collateral, REPORTDATA binding,
a PCS client, and a simulated platform for development and tests.

>>> # verdict = verify_quote(quote_bytes, collateral_from_dir("case"), now=int(time.time()))
"""

from atlas_log.tdx.binding import KEY_TAG, PAYLOAD_TAG, key_report_data, payload_report_data
from atlas_log.tdx.collateral import Collateral, collateral_from_dir
from atlas_log.tdx.policy import Policy
from atlas_log.tdx.quote import Quote, parse_quote
from atlas_log.tdx.verify import INTEL_ROOT_SPKI_SHA256, Verdict, VerificationCache, verify_quote

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
