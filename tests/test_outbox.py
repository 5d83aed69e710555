"""The publisher's outbox on its own: drop-oldest, the in-flight window, order after a reconnect."""

from __future__ import annotations

import threading

import pytest
from fer_edge.mqtt.outbox import Outbox, Outgoing


def message(n: int) -> Outgoing:
    return Outgoing("t", str(n).encode(), 1, False)


def test_a_full_outbox_drops_the_oldest_and_counts() -> None:
    box = Outbox(capacity=3, window=10)
    assert [box.put(message(n)) for n in range(5)] == [False, False, False, True, True]
    assert (box.dropped, box.queued) == (2, 3)
    assert [box.take(True).payload for _ in range(3)] == [b"2", b"3", b"4"]  # type: ignore[union-attr]


def test_nothing_is_taken_while_offline_or_with_a_full_window() -> None:
    box = Outbox(capacity=10, window=2)
    for n in range(4):
        box.put(message(n))
    assert box.take(False) is None
    first, second = box.take(True), box.take(True)
    assert first is not None and second is not None
    box.handed(1)
    box.handed(2)
    assert box.take(True) is None  # two unacknowledged: the window is full
    box.acknowledged(1)
    assert box.take(True) == message(2)


def test_a_refused_message_is_first_again() -> None:
    box = Outbox(capacity=10, window=5)
    box.put(message(0))
    box.put(message(1))
    taken = box.take(True)
    assert taken is not None
    box.put_back(taken)
    assert box.take(True) == message(0)


def test_new_messages_wait_until_the_client_has_resent_the_unacknowledged() -> None:
    box = Outbox(capacity=10, window=5)
    box.put(message(0))
    box.take(True)
    box.handed(7)
    box.put(message(1))
    box.reconnected()
    assert box.take(True) is None  # message 7 is being re-sent first
    box.acknowledged(7)
    assert box.take(True) == message(1)


def test_wait_until_empty_returns_once_everything_is_acknowledged() -> None:
    box = Outbox(capacity=10, window=5)
    box.put(message(0))
    box.take(True)
    box.handed(1)
    assert not box.wait_until_empty(0.05, give_up=lambda: False)

    def acknowledge() -> None:
        box.acknowledged(1)
        box.take(True)  # the publisher's drain folds the acknowledgement in and wakes waiters

    threading.Timer(0.05, acknowledge).start()
    assert box.wait_until_empty(5, give_up=lambda: False)


def test_wait_until_empty_gives_up_when_asked() -> None:
    box = Outbox(capacity=10, window=5)
    box.put(message(0))
    gone = threading.Event()
    threading.Timer(0.05, lambda: (gone.set(), box.wake())).start()
    assert box.wait_until_empty(5, give_up=gone.is_set)


@pytest.mark.parametrize(("capacity", "window"), [(0, 1), (1, 0)])
def test_sizes_below_one_are_refused(capacity: int, window: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Outbox(capacity, window)


def test_the_largest_unacknowledged_message_can_be_given_up_and_counts_as_refused() -> None:
    box = Outbox(capacity=10, window=10)
    small, big, as_big = Outgoing("t", b"1", 1, False), Outgoing("t", b"x" * 10, 1, False), \
        Outgoing("t", b"y" * 10, 1, False)
    for mid, msg in enumerate([small, big, as_big], start=1):
        box.put(msg)
        box.handed(mid, box.take(True))
    assert box.largest_unacked() == (2, big)  # the oldest of equals
    box.acknowledged(1)
    assert box.give_up(2) == big and box.settled_on("t") == (1, 1)
    assert (box.largest_acked, box.largest_unacked()) == (small.size(), (3, as_big))
    assert box.give_up(2) is None
