from events.anchors import Anchor, check_anchor
from events.chain import ChainReport

INTACT = ChainReport(True, 10)
H = "ab" * 32


def test_an_anchor_matching_an_intact_chain_passes_whatever_the_case_of_its_hex() -> None:
    check = check_anchor(Anchor("m.json", 7, H.upper()), stored_hash=H, head=10, chain=INTACT)
    assert (check.ok, check.problem, check.position) == (True, None, 7)


def test_an_anchor_beyond_the_head_reports_the_missing_positions() -> None:
    check = check_anchor(Anchor("m.json", 12, H), stored_hash=None, head=10, chain=INTACT)
    assert not check.ok
    assert check.problem == (
        "records position 12, but the log ends at position 10: events 11..12 are missing "
        "(the log was truncated or replaced)"
    )


def test_another_hash_at_the_anchor_position_means_a_rewritten_log() -> None:
    check = check_anchor(Anchor("m.json", 7, H), stored_hash="cd" * 32, head=10, chain=INTACT)
    assert not check.ok and check.problem is not None
    assert check.problem.endswith("the log was rewritten at or before position 7")


def test_an_anchor_after_a_chain_break_cannot_vouch_even_if_its_hash_matches() -> None:
    broken = ChainReport(False, 5, 5, "stored hash does not match the event's content")
    after = check_anchor(Anchor("m.json", 7, H), stored_hash=H, head=10, chain=broken)
    before = check_anchor(Anchor("m.json", 4, H), stored_hash=H, head=10, chain=broken)
    assert not after.ok and after.problem is not None and "already broken at position 5" in after.problem
    assert before.ok


def test_position_zero_must_carry_the_genesis_hash() -> None:
    assert check_anchor(Anchor("m.json", 0, "00" * 32), stored_hash=None, head=0, chain=INTACT).ok
    assert not check_anchor(Anchor("m.json", 0, H), stored_hash=None, head=0, chain=INTACT).ok
