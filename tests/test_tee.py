"""The tee record of attested entries: typed values whose JSON is exactly what leaves hold."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from atlas_log.errors import FormatError
from atlas_log.tdx.binding import GPU_TAG, KEY_TAG
from atlas_log.tee import InheritedAttestation, OwnQuote, TeeRecord
from tests.data import entry_bodies


def _logged(case: str) -> dict[str, Any]:
    tee: dict[str, Any] = json.loads(next(c for c in entry_bodies()["entries"] if c["case"] == case)["body"])["tee"]
    return tee


@pytest.mark.parametrize("case", ["quote", "key"])
def test_records_read_back_to_the_same_json(case: str) -> None:
    logged = _logged(case)
    record = TeeRecord.from_json(logged)
    assert record.to_json() == logged
    kind = OwnQuote if case == "quote" else InheritedAttestation
    assert isinstance(record.evidence, kind)
    assert record.evidence.verdict.collateral_set == logged["collateral"]["set"]


def test_only_a_quote_binding_a_key_attests_it() -> None:
    own = TeeRecord.from_json(_logged("quote"))
    assert not own.attests_key(own.spki_sha256)  # a payload binding attests no key
    key = replace(own, binding=KEY_TAG)
    assert key.attests_key(own.spki_sha256) and not key.attests_key("00" * 32)
    inherited = TeeRecord.from_json(_logged("key"))
    assert inherited.binding == KEY_TAG and not inherited.attests_key(inherited.spki_sha256)  # it cites one


def test_records_are_read_strictly() -> None:
    logged = _logged("quote")
    for broken in (
        None,
        [],
        {**logged, "type": "sev-snp"},
        {**logged, "extra": 1},
        {**logged, "keyAttestationEntry": 3},  # a quote of its own and a cited one
        {**logged, "binding": "other"},
        {**logged, "simulated": "yes"},
        {**logged, "signatureIndex": -1},
        {**logged, "nonce": "00"},
        {**logged, "collateral": {"pck_crl": "ab"}},
        {**logged, "rtmr": "ab"},
        {**logged, "tcbEvaluationDataNumber": True},
        {k: v for k, v in logged.items() if k != "mrTd"},
        {k: v for k, v in logged.items() if k not in ("quoteSha256", "reportData")},  # and no cited entry
        {**_logged("key"), "keyAttestationEntry": -1},
    ):
        with pytest.raises(FormatError):
            TeeRecord.from_json(broken)


def _composite() -> dict[str, Any]:
    gpu = {
        "architecture": "HOPPER",
        "driverVersion": "580.0.0",
        "vbiosVersion": "96.00.aa.00.01",
        "ueid": "123",
        "hwmodel": "GH100 A01 GSP BROM",
        "fwid": "ab" * 48,
        "evidenceSha256": "cd" * 32,
        "deviceChain": ["CN=leaf", "CN=root"],
        "rims": [{"kind": "driver", "id": "NV_GPU_DRIVER_GH100_580.0.0", "version": "580.0.0", "sha256": "ef" * 32}],
        "measurements": "matched",
        "revocation": [{"chain": "device", "serial": "12ab", "status": "good", "sha256": "aa" * 32}],
    }
    return {**_logged("quote"), "binding": GPU_TAG, "gpuEvidenceSha256": "01" * 32, "gpus": [gpu]}


def test_a_composite_record_reads_back_to_the_same_json_and_strictly() -> None:
    logged = _composite()
    record = TeeRecord.from_json(logged)
    assert record.to_json() == logged and record.gpus[0].rims[0][0] == "driver"
    assert record.gpus[0].revocation == (("device", "12ab", "good", "aa" * 32),)
    gpu = logged["gpus"][0]
    for broken in (
        {**_logged("quote"), "gpus": logged["gpus"]},  # GPUs under a binding that does not commit to them
        {k: v for k, v in logged.items() if k != "gpus"},
        {**logged, "gpus": []},
        {**logged, "gpus": [{**gpu, "extra": 1}]},
        {**logged, "gpus": [{**gpu, "measurements": "mostly"}]},
        {**logged, "gpus": [{**gpu, "rims": [{"kind": "driver"}]}]},
        {**logged, "gpus": [{**gpu, "revocation": [{"chain": "device", "status": "good"}]}]},
        {**logged, "gpus": [{**gpu, "revocation": {}}]},
        {**logged, "gpus": [{k: v for k, v in gpu.items() if k != "ueid"}]},
        {k: v for k, v in logged.items() if k != "gpuEvidenceSha256"},
    ):
        with pytest.raises(FormatError):
            TeeRecord.from_json(broken)
