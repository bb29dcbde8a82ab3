from __future__ import annotations

import pytest

from atlas_log.errors import FormatError
from atlas_log.tdx.policy import Policy


def test_policy_from_json() -> None:
    pol = Policy.from_json({"allowed_statuses": ["UpToDate", "SWHardeningNeeded"], "mr_td": ["AB" * 48]})
    assert pol.mr_td == frozenset({"ab" * 48})

    bad_values: list[object] = [{"allowed_statuses": ["Fine"]}, {"mr_td": ["ab"]}, {"nope": 1}, {"rtmr": [None]}, []]
    bad_values += [{"allow_migratable": 1}, {"require_sept_ve_disable": "no"}]
    for bad in bad_values:
        with pytest.raises(FormatError):
            Policy.from_json(bad)
