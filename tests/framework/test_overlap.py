"""Reading ahead and sending behind: the same answers, in the same order, as doing it inline."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from framework.overlap import Sender, read_ahead


@pytest.fixture
def threads() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(4, "test-io") as pool:
        yield pool


class Broken(Exception):
    pass


def test_read_ahead_gives_every_page_in_order_and_raises_where_the_pages_raised(threads: ThreadPoolExecutor) -> None:
    def pages() -> Iterator[int]:
        yield from range(5)
        raise Broken("page 5")

    seen: list[int] = []
    with pytest.raises(Broken, match="page 5"):
        for page in read_ahead(pages(), threads):
            seen.append(page)
    assert seen == [0, 1, 2, 3, 4]


def test_the_next_page_is_fetched_while_the_caller_handles_this_one(threads: ThreadPoolExecutor) -> None:
    fetching_second = threading.Event()

    def pages() -> Iterator[str]:
        yield "first"
        fetching_second.set()
        yield "second"

    handled = []
    for page in read_ahead(pages(), threads):
        if page == "first":  # the reader goes on without the caller asking
            assert fetching_second.wait(5)
        handled.append(page)
    assert handled == ["first", "second"]


def test_a_caller_that_stops_early_closes_the_pages_in_the_reader(threads: ThreadPoolExecutor) -> None:
    closed_in: list[str] = []

    def pages() -> Iterator[int]:
        try:
            yield from range(1000)
        finally:
            closed_in.append(threading.current_thread().name)

    ahead = read_ahead(pages(), threads)
    assert next(ahead) == 0
    ahead.close()  # type: ignore[attr-defined]
    assert len(closed_in) == 1 and closed_in[0].startswith("test-io")  # a thread of the pool


@pytest.mark.parametrize(("depth", "waiting"), [(1, 0), (2, 0), (3, 0), (2, 5)])
def test_a_sender_collects_each_answer_in_order_in_the_callers_thread(
    threads: ThreadPoolExecutor, depth: int, waiting: int
) -> None:
    collected: list[tuple[int, str]] = []
    sender: Sender[int] = Sender(threads, depth, waiting)
    for n in range(12):
        sender.send(lambda n=n: n * n, lambda answer: collected.append((answer, threading.current_thread().name)))  # type: ignore[misc]
        assert len(collected) >= n + 1 - depth - waiting  # never more than depth + waiting left uncollected
    sender.finish()
    main = threading.current_thread().name
    assert collected == [(n * n, main) for n in range(12)]


@pytest.mark.parametrize("waiting", [0, 3])
def test_a_sender_runs_depth_calls_at_once_and_no_more(threads: ThreadPoolExecutor, waiting: int) -> None:
    together = threading.Barrier(2, timeout=5)  # broken unless two calls run at once
    running, most = 0, 0
    lock = threading.Lock()

    def call() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        together.wait()
        with lock:
            running -= 1

    sender: Sender[None] = Sender(threads, 2, waiting)
    for _ in range(10):
        sender.send(call, lambda _answer: None)
    sender.finish()
    assert most == 2


def test_calls_wait_their_turn_without_holding_the_caller_up_to_the_limit(threads: ThreadPoolExecutor) -> None:
    release = threading.Event()
    started: list[int] = []

    def call(n: int) -> int:
        started.append(n)
        release.wait(5)
        return n

    collected: list[int] = []
    sender: Sender[int] = Sender(threads, 1, 2)
    for n in range(3):  # one running, two waiting: the caller goes on
        sender.send(functools.partial(call, n), collected.append)
    assert not release.is_set() and collected == []
    threading.Timer(0.05, release.set).start()
    sender.send(functools.partial(call, 3), collected.append)  # beyond the limit: waits for the oldest
    assert release.is_set() and collected[:1] == [0]
    sender.finish()
    assert started == [0, 1, 2, 3] and collected == [0, 1, 2, 3]


def test_a_failed_call_is_raised_when_collected_and_abandon_waits_for_the_one_in_flight(
    threads: ThreadPoolExecutor,
) -> None:
    sender: Sender[None] = Sender(threads, 1)
    release, finished = threading.Event(), threading.Event()

    def fail() -> None:
        raise Broken("batch refused")

    def slow() -> None:
        release.wait(5)
        finished.set()

    sender.send(fail, lambda _answer: None)
    with pytest.raises(Broken, match="batch refused"):
        sender.send(slow, lambda _answer: None)
    sender.send(slow, lambda _answer: pytest.fail("an abandoned answer is not collected"))
    threading.Timer(0.05, release.set).start()
    sender.abandon()
    assert finished.is_set()


def test_calls_waiting_behind_a_failed_one_are_never_made(threads: ThreadPoolExecutor) -> None:
    release = threading.Event()
    made: list[int] = []

    def fail() -> None:
        release.wait(5)
        raise Broken("batch refused")

    sender: Sender[None] = Sender(threads, 1, 5)
    sender.send(fail, lambda _answer: None)
    for n in range(5):
        sender.send(functools.partial(made.append, n), lambda _answer: pytest.fail("not collected"))
    release.set()
    with pytest.raises(Broken, match="batch refused"):
        sender.finish()
    sender.abandon()
    assert made == []
