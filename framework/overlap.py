"""Waiting on a service while the engine works: pages read ahead, batches sent behind.

A sync spends its time in two places, its own CPU (mapping, hashing, spooling, planning) and
the services' answers. Done one after the other, the run costs their sum; a reader thread
that fetches the next page while the engine spools this one, and senders per side that
write a batch while the next is encoded and the engine plans the one after, make it cost
about the larger of the two. A job never has more than :data:`IN_FLIGHT` requests at a
service: a side is read (one page at a time) before it is written.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, wait
from typing import Generic, TypeVar, cast

T = TypeVar("T")
R = TypeVar("R")
AHEAD = 1  # pages a reader fetches beyond the one being handled
IN_FLIGHT = 2  # calls a sender has sent and not collected (Graph allows 4 at once per mailbox)
THREADS_PER_JOB = 1 + 2 * IN_FLIGHT  # a reader, and a sender for each of the two sides


def read_ahead(pages: Iterator[T], threads: Executor, ahead: int = AHEAD) -> Iterator[T]:
    """``pages``, each next one fetched in one of ``threads`` while the caller handles the last.

    What ``pages`` raises is raised here, in order; a caller that stops early stops the
    reader, which closes ``pages`` in its own thread (a generator's ``finally`` runs there).
    """
    handoff: queue.Queue[tuple[T | None, BaseException | None, bool]] = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def offer(item: tuple[T | None, BaseException | None, bool]) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for page in pages:
                if not offer((page, None, False)):
                    break
        except BaseException as exc:  # handed to the caller's thread, raised there
            offer((None, exc, True))
            return
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()
        offer((None, None, True))

    reader = threads.submit(read)
    try:
        while True:
            page, error, last = handoff.get()
            if error is not None:
                raise error
            if last:
                return
            yield cast(T, page)  # not None: a page
    finally:
        stop.set()
        wait([reader])


class Sender(Generic[R]):
    """Sends calls in ``threads``, at most ``depth`` at a time; their answers are collected in
    the caller's thread, in the order the calls were sent.

    Up to ``waiting`` more calls wait their turn without holding the caller, so that it can go
    on with other work (another side's batches) while this side's are written; ``send``
    blocks, collecting the oldest answers, only beyond that. ``finish`` collects them all.
    After a failure, ``abandon`` drops the calls not started and waits for the ones running,
    without collecting them, so nothing is still writing when the job gives up.
    """

    def __init__(self, threads: Executor, depth: int = IN_FLIGHT, waiting: int = 0) -> None:
        self._threads = threads
        self._depth = depth
        self._limit = depth + waiting
        self._flights: deque[tuple[Future[R], Callable[[R], None]]] = deque()  # sent, not collected
        self._queue: deque[tuple[Future[R], Callable[[], R]]] = deque()  # sent, not started
        self._running = 0  # drains started in ``threads``, each running queued calls in turn
        self._lock = threading.Lock()

    def send(self, call: Callable[[], R], collect: Callable[[R], None]) -> None:
        """Send ``call``; its answer goes to ``collect`` (in the caller's thread) when a later
        ``send`` finds it answered or must wait for it, or on ``finish``."""
        while self._flights and (self._flights[0][0].done() or len(self._flights) >= self._limit):
            self._collect_oldest()
        future: Future[R] = Future()
        self._flights.append((future, collect))
        with self._lock:
            self._queue.append((future, call))
            start = self._running < self._depth
            if start:
                self._running += 1
        if start:
            self._threads.submit(self._drain)

    def call_here(self, call: Callable[[], R], collect: Callable[[R], None]) -> None:
        """Collect the calls in flight, then make ``call`` in the caller's thread and collect it:
        for a round's last batch, which nothing would overlap (and a small round starts no thread)."""
        self.finish()
        collect(call())

    def finish(self) -> None:
        """Wait for every call sent and collect the answers (raising what a call raised)."""
        while self._flights:
            self._collect_oldest()

    def abandon(self) -> None:
        """Drop the calls not started; wait for the ones running, dropping their answers."""
        self._drop_queued()
        wait([future for future, _collect in self._flights])
        self._flights.clear()

    def _drain(self) -> None:
        """Run queued calls one after another until none is left (in a thread of the pool)."""
        while True:
            with self._lock:
                if not self._queue:
                    self._running -= 1
                    return
                future, call = self._queue.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as exc:  # raised in the caller's thread when collected
                future.set_exception(exc)
                self._drop_queued()  # a failed call ends the round: what waited behind it is not sent

    def _drop_queued(self) -> None:
        with self._lock:
            dropped, self._queue = self._queue, deque()
        for future, _call in dropped:
            future.cancel()
            future.set_running_or_notify_cancel()  # cancelled and notified: done for ``wait``

    def _collect_oldest(self) -> None:
        future, collect = self._flights.popleft()
        collect(future.result())
