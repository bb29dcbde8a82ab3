"""TDX quote verification speed: this verifier (cold and warm) against the PyPI ``dcap-qvl`` verifier, in one
run on the same real quote and collateral (targets: warm >= 5x dcap-qvl's verifications/s, cold >= 1x).

cold = the first quote from a platform never seen before: the collateral was verified once when it was fetched
(as the server does), the quote's PCK chain, QE report, quote signature and TCB level are all checked afresh;
warm = the steady state of the server, whose caches hold what depends only on exact bytes (a warm quote costs
its own quote signature plus lookups); uncached = everything verified from scratch on every call, collateral
signatures included. dcap-qvl, stateless, gets its collateral pre-parsed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import dcap_qvl

from atlas_log.tdx.collateral import Collateral, collateral_from_dir, raw_members
from atlas_log.tdx.verification import prime_cache, verify_quote
from atlas_log.tdx.verification_cache import VerificationCache
from bench.common import ROOT, report


def _dcap_collateral(c: Collateral) -> Any:
    tcb, qe = raw_members(c.tcb_info, "tcb"), raw_members(c.qe_identity, "qe")
    return dcap_qvl.QuoteCollateralV3(
        c.pck_crl_issuer_chain.decode(),
        c.root_ca_crl,
        c.pck_crl,
        c.tcb_info_issuer_chain.decode(),
        tcb["tcbInfo"],
        bytes.fromhex(json.loads(tcb["signature"])),
        c.qe_identity_issuer_chain.decode(),
        qe["enclaveIdentity"],
        bytes.fromhex(json.loads(qe["signature"])),
    )


def _rate(fn: Any, seconds: float) -> dict[str, float]:
    for _ in range(50):
        fn()
    samples = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return {
        "per_s": round(len(samples) / sum(samples), 1),
        "median_ms": round(statistics.median(samples) * 1000, 4),
        "n": len(samples),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--case", default="v4-uptodate")
    args = ap.parse_args()
    folder = Path(os.environ.get("ATLAS_VECTORS", ROOT.parent / "shared" / "vectors")) / "tdx" / args.case
    quote = (folder / "quote.bin").read_bytes()
    case = json.loads((folder / "case.json").read_text())
    now = (case["valid_from"] + case["valid_until"]) // 2
    coll = collateral_from_dir(folder)
    dc = _dcap_collateral(coll)

    ours = verify_quote(quote, coll, now)
    theirs = dcap_qvl.verify(quote, dc, now)
    assert ours.accept and ours.tcb_status == theirs.status, (ours, theirs.status)

    cache = VerificationCache()
    verify_quote(quote, coll, now, cache=cache)
    primed = VerificationCache()
    prime_cache(primed, coll)
    dcap = _rate(lambda: dcap_qvl.verify(quote, dc, now), args.seconds)
    uncached = _rate(lambda: verify_quote(quote, coll, now), args.seconds)
    cold = _rate(lambda: verify_quote(quote, coll, now, cache=primed.only("collateral")), args.seconds)
    warm = _rate(lambda: verify_quote(quote, coll, now, cache=cache), args.seconds)
    report(
        "tdx",
        {
            "case": args.case,
            "verdicts": {"ours": ours.tcb_status, "dcap_qvl": theirs.status},
            "dcap_qvl": dcap,
            "ours_cold": cold,
            "ours_uncached": uncached,
            "ours_warm": warm,
            "warm_vs_dcap_qvl": round(warm["per_s"] / dcap["per_s"], 2),
            "cold_vs_dcap_qvl": round(cold["per_s"] / dcap["per_s"], 2),
            "uncached_vs_dcap_qvl": round(uncached["per_s"] / dcap["per_s"], 2),
            "targets": {"warm_ratio": 5, "cold_ratio": 1},
            "warm_target_met": warm["per_s"] >= 5 * dcap["per_s"],
            "cold_target_met": cold["per_s"] >= dcap["per_s"],
            "uncached_at_least_dcap_qvl": uncached["per_s"] >= dcap["per_s"],
        },
    )


if __name__ == "__main__":
    main()
