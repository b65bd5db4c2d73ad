"""Reading ahead and sending behind: the same answers, in the same order, as doing it inline."""

from __future__ import annotations

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


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_a_sender_collects_each_answer_in_order_in_the_callers_thread(threads: ThreadPoolExecutor, depth: int) -> None:
    collected: list[tuple[int, str]] = []
    sender: Sender[int] = Sender(threads, depth)
    for n in range(6):
        sender.send(lambda n=n: n * n, lambda answer: collected.append((answer, threading.current_thread().name)))  # type: ignore[misc]
        assert len(collected) == max(0, n + 1 - depth)  # an answer waits until depth calls are in flight
    sender.finish()
    main = threading.current_thread().name
    assert collected == [(n * n, main) for n in range(6)]


def test_a_sender_runs_depth_calls_at_once_and_no_more(threads: ThreadPoolExecutor) -> None:
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

    sender: Sender[None] = Sender(threads, 2)
    for _ in range(10):
        sender.send(call, lambda _answer: None)
    sender.finish()
    assert most == 2


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
