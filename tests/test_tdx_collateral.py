"""The collateral set and its one JSON form (what the log serves and evidence carries)."""

from __future__ import annotations

import pytest

from atlas_log.errors import FormatError
from atlas_log.tdx.collateral import COLLATERAL_PARTS, Collateral
from atlas_log.testing.simulate import SimulatedPlatform


def test_json_form_round_trips_to_the_same_set() -> None:
    collateral = SimulatedPlatform.create().collateral()
    served = collateral.to_json()
    assert list(served) == list(COLLATERAL_PARTS)
    again = Collateral.from_json(served)
    assert again == collateral and again.digest == collateral.digest


@pytest.mark.parametrize(
    "mutate",
    [
        lambda j: j.pop("pck_crl"),
        lambda j: j.update(tcb_info=7),
        lambda j: j.update(root_ca_crl="not base64!"),
    ],
    ids=["missing-part", "not-a-string", "not-base64"],
)
def test_a_malformed_json_form_is_a_format_error(mutate: object) -> None:
    served = SimulatedPlatform.create().collateral().to_json()
    mutate(served)  # type: ignore[operator]
    with pytest.raises(FormatError):
        Collateral.from_json(served)
    with pytest.raises(FormatError):
        Collateral.from_json(["not", "an", "object"])
