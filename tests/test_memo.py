"""The identity memo: found only by the very objects it was computed from."""

from __future__ import annotations

import gc

from atlas_log.memo import IdentityMemo


class Thing:
    """Equal to any other Thing: the memo must tell them apart all the same."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Thing)

    def __hash__(self) -> int:
        return 0


def test_found_by_the_same_objects_and_key_only() -> None:
    memo: IdentityMemo[str] = IdentityMemo(8)
    a, b = Thing(), Thing()
    assert memo.get((a, b)) is None
    assert memo.put((a, b), "ab") == "ab"
    assert memo.get((a, b)) == "ab"
    assert memo.get((b, a)) is None  # order counts
    assert memo.get((a, Thing())) is None  # an equal object is not the same one
    assert memo.get((a,)) is None
    assert memo.get((a, b), key="other") is None
    memo.put((a, b), "ab+", key="other")
    assert memo.get((a, b), key="other") == "ab+" and memo.get((a, b)) == "ab"


def test_an_entry_keeps_its_objects_so_their_ids_cannot_name_another() -> None:
    memo: IdentityMemo[str] = IdentityMemo(8)
    memo.put((Thing(),), "gone")  # the memo alone holds it
    for _ in range(1000):  # new objects never take the id of one the memo holds
        fresh = Thing()
        assert memo.get((fresh,)) is None
        del fresh
        gc.collect(0)


def test_least_recently_used_go_first() -> None:
    memo: IdentityMemo[int] = IdentityMemo(2)
    a, b, c = Thing(), Thing(), Thing()
    memo.put((a,), 1)
    memo.put((b,), 2)
    assert memo.get((a,)) == 1  # a is now the most recent
    memo.put((c,), 3)
    assert (memo.get((a,)), memo.get((b,)), memo.get((c,))) == (1, None, 3)
    assert len(memo) == 2
    memo.clear()
    assert memo.get((a,)) is None


def test_remember_makes_a_value_once_per_objects() -> None:
    memo: IdentityMemo[int] = IdentityMemo(8)
    a, b = Thing(), Thing()
    made: list[int] = []

    def make() -> int:
        made.append(1)
        return len(made)

    assert memo.remember((a,), make) == 1
    assert memo.remember((a,), make) == 1
    assert memo.remember((b,), make) == 2
    assert len(made) == 2
