"""The envelope router's outbox: who still owes an ack, when to retry, what was sent to whom,
when failing deliveries are worth a warning."""

from actors.envelope_router.outbox import (
    FAILING_REPORT_S, FIRST_RETRY_S, MOST_RETRY_S, FailingDeliveries, Outbox, Sent, outbox_key,
)


def entry(seq: int, to=("b", "c"), expires: int = 1000) -> Sent:
    return Sent(seq, f"cid{seq}", tuple(to), expires, set(to))


def test_acknowledge_and_pending():
    box = Outbox()
    box.add(entry(0))
    assert box.pending() == 2
    assert box.acknowledge("cid0", "b") is not None
    assert box.acknowledge("cid0", "b") is None  # once
    assert box.acknowledge("nope", "b") is None
    assert box.pending() == 1
    assert (box.pending_for("b"), box.pending_for("c")) == (0, 1)


def test_due_backs_off_per_entry():
    box = Outbox()
    box.add(entry(0))
    assert [r for _, r in box.due(0.0)] == ["b", "c"]
    assert list(box.due(0.0)) == []  # not again before its back-off
    assert [r for _, r in box.due(FIRST_RETRY_S)] == ["b", "c"]
    waits = []
    now = FIRST_RETRY_S
    for _ in range(10):
        e = box.get("cid0")
        waits.append(e.next_try - now)
        now = e.next_try
        list(box.due(now))
    assert waits[0] == FIRST_RETRY_S * 2 and max(waits) == MOST_RETRY_S


def test_expire_and_sent_to():
    box = Outbox()
    box.add(entry(1, to=("b",), expires=10))
    box.add(entry(2, to=("c",), expires=20))
    box.add(entry(3, to=("b", "c"), expires=30))
    assert box.sent_to("b", -1, 10) == [(1, "cid1"), (3, "cid3")]
    assert box.sent_to("b", 1, 10) == [(3, "cid3")]
    assert box.sent_to("c", -1, 1) == [(2, "cid2")]
    assert [e.seq for e in box.expire(20)] == [1, 2]
    assert len(box) == 1 and box.get("cid1") is None


def test_round_trip_and_key_order():
    e = entry(5)
    assert Sent.from_doc(e.to_doc()).to_doc() == e.to_doc()
    assert sorted([outbox_key(10), outbox_key(9)]) == [outbox_key(9), outbox_key(10)]


def test_failing_deliveries_are_reported_once_a_period_per_recipient():
    failing = FailingDeliveries()
    assert failing.failed("b", 0.0) is None  # one timeout under load says nothing
    assert failing.failed("b", FAILING_REPORT_S - 1) is None
    assert failing.failed("c", FAILING_REPORT_S - 1) is None
    assert failing.failed("b", FAILING_REPORT_S) == (3, FAILING_REPORT_S)
    assert failing.failed("b", FAILING_REPORT_S + 1) is None  # a new period starts
    assert failing.failed("b", 2 * FAILING_REPORT_S + 1) == (2, FAILING_REPORT_S)
    failing.delivered("c")  # a success ends c's period
    assert failing.failed("c", 2 * FAILING_REPORT_S) is None
