"""What verifying one GPU's evidence costs, against the physical floor measured in the same run.

One process, one core, no I/O (verification is pure). For a simulated Hopper GPU with both RIMs and the OCSP
responses for its nine NVIDIA-issued certificates (what admission verifies with):

* ``floor``: one bare ECDSA P-384 signature verification over a report's transcript (what no verifier of an
  SPDM report can avoid);
* ``cold``: a whole verification (report, device chain to its root, both RIMs' chains and XML signatures,
  every golden measurement, every OCSP response's signer) with nothing memoised, as for the first report of a
  GPU never seen, with RIMs never seen;
* ``warm_same_gpu``: a fresh report (new nonce, new signature) of a GPU already verified: the chain paths and
  the RIMs are known by their bytes, so the report's own signature and the comparison remain;
* ``warm_new_gpu``: the first report of a GPU never seen, of a model already seen (its two per-device
  certificates are new; its CAs, their signatures and the RIMs are known);

and the cold cost broken into its parts. Each figure is the median of ``--repeat`` timed batches.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from atlas_log.gpu.chain import check_chain, clear_issuance_cache
from atlas_log.gpu.ocsp import check_revocation, clear_ocsp_caches
from atlas_log.gpu.policy import Policy
from atlas_log.gpu.report import parse_report
from atlas_log.gpu.rim import clear_rim_caches, parse_rim, rim_signature_problem
from atlas_log.gpu.verification import clear_caches, verify_gpu_evidence
from atlas_log.testing.simulated_gpu import SimulatedGpu
from bench.common import report

POLICY = Policy(require_driver_rim=True, require_vbios_rim=True, require_ocsp=True)


def _per_second(fn: Callable[[int], object], count: int, repeat: int) -> dict[str, float]:
    """``fn(i)`` for i in 0..count-1, ``repeat`` times; the median batch as operations/s and ms each."""
    rates = []
    for r in range(repeat):
        started = time.perf_counter()
        for i in range(count):
            fn(r * count + i)
        rates.append(count / (time.perf_counter() - started))
    rate = statistics.median(rates)
    return {"per_s": round(rate, 1), "ms_each": round(1000 / rate, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=200, help="verifications per timed batch")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--new-gpus", type=int, default=40, help="never-seen GPUs per timed batch of warm_new_gpu")
    args = ap.parse_args()

    now = int(time.time())
    first = SimulatedGpu.create(now)
    fleet = [first.sibling(now) for _ in range(args.new_gpus * args.repeat)]
    driver, vbios = first.driver_rim(), first.vbios_rim()
    responses = first.ocsp_responses(now)
    fleet_responses = {id(g): [*g.ocsp_responses(now)[:1], *responses[1:]] for g in fleet}
    batch = max(args.count, args.new_gpus) * args.repeat
    nonces = [i.to_bytes(32, "big") for i in range(batch)]
    reports = [first.report(n) for n in nonces]
    fleet_reports = [g.report(n) for g, n in zip(fleet, nonces, strict=False)]
    # Each GPU's chain as the bytes a submission carries (the simulator encodes it afresh on every call).
    chains = {id(g): g.certificate_chain for g in [first, *fleet]}

    def verify(i: int, gpu: SimulatedGpu, rep: bytes) -> None:
        # A new GPU brings one new OCSP response (for its own device certificate); the CAs' are shared.
        verdict = verify_gpu_evidence(
            rep,
            chains[id(gpu)],
            nonce=nonces[i],
            at=now,
            driver_rim=driver,
            vbios_rim=vbios,
            device_root=gpu.device_root,
            rim_root=gpu.rim_root,
            ocsp=responses if gpu is first else fleet_responses[id(gpu)],
            policy=POLICY,
        )
        assert verdict.accept, verdict.failures

    parsed = parse_report(reports[0])
    raw = parsed.response.signature
    signature = encode_dss_signature(int.from_bytes(raw[:48], "big"), int.from_bytes(raw[48:], "big"))
    key = first.leaf.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)

    def floor(_: int) -> None:
        key.verify(signature, parsed.signed, ec.ECDSA(hashes.SHA384()))

    def cold(i: int) -> None:
        clear_caches()
        verify(i, first, reports[i])

    def warm_same(i: int) -> None:
        verify(i, first, reports[i])

    def warm_new(i: int) -> None:
        verify(i, fleet[i], fleet_reports[i])

    rim = parse_rim(driver)
    chain = first.device_chain

    def part_chain(_: int) -> None:
        clear_issuance_cache()
        check_chain(chain, first.device_root, now)

    def part_rim_parse(_: int) -> None:
        clear_rim_caches()
        parse_rim(driver)

    def part_rim_signature(_: int) -> None:
        clear_rim_caches()
        rim_signature_problem(rim)

    def part_rim_chain(_: int) -> None:
        clear_issuance_cache()
        check_chain(rim.certificates, first.rim_root, now)

    def part_ocsp(_: int) -> None:
        clear_ocsp_caches()
        check_revocation(first.device_chain, responses, at=now, skip_leaf=True)
        check_revocation(rim.certificates, responses, at=now)

    def part_report_parse(i: int) -> None:
        parse_report(reports[i])

    count, repeat = args.count, args.repeat
    results: dict[str, Any] = {"floor_p384_verify": _per_second(floor, count, repeat)}
    results["cold"] = _per_second(cold, count // 4 or 1, repeat)
    warm_same(0)  # memoise the chain and the RIMs once
    results["warm_same_gpu"] = _per_second(warm_same, count, repeat)
    results["warm_new_gpu"] = _per_second(warm_new, args.new_gpus, repeat)
    results["cold_parts_ms"] = {
        name: _per_second(fn, count // 4 or 1, repeat)["ms_each"]
        for name, fn in (
            ("report_parse", part_report_parse),
            ("report_signature", floor),
            ("device_chain", part_chain),
            ("rim_parse", part_rim_parse),
            ("rim_xml_signature", part_rim_signature),
            ("rim_chain", part_rim_chain),
            ("ocsp_device_and_one_rim_chain", part_ocsp),
        )
    }
    floor_rate = results["floor_p384_verify"]["per_s"]
    results["ratios_to_floor"] = {
        k: round(results[k]["per_s"] / floor_rate, 3) for k in ("cold", "warm_same_gpu", "warm_new_gpu")
    }
    what = "simulated HOPPER, driver and VBIOS RIMs, 9 OCSP responses, all required"
    report("gpu", {"gpu": what, "durability": "none (pure, no I/O)", **results})


if __name__ == "__main__":
    main()
