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

    ``send`` first collects the oldest answers while ``depth`` calls are in flight; ``finish``
    collects them all. After a failure, ``abandon`` waits for the calls in flight without
    collecting them, so nothing is still writing when the job gives up.
    """

    def __init__(self, threads: Executor, depth: int = IN_FLIGHT) -> None:
        self._threads = threads
        self._depth = depth
        self._flights: deque[tuple[Future[R], Callable[[R], None]]] = deque()

    def send(self, call: Callable[[], R], collect: Callable[[R], None]) -> None:
        """Start ``call``; its answer goes to ``collect`` (in the caller's thread) once
        ``depth`` later calls are sent, or on ``finish``."""
        while len(self._flights) >= self._depth:
            self._collect_oldest()
        self._flights.append((self._threads.submit(call), collect))

    def call_here(self, call: Callable[[], R], collect: Callable[[R], None]) -> None:
        """Collect the calls in flight, then make ``call`` in the caller's thread and collect it:
        for a round's last batch, which nothing would overlap (and a small round starts no thread)."""
        self.finish()
        collect(call())

    def finish(self) -> None:
        """Wait for every call in flight and collect the answers (raising what a call raised)."""
        while self._flights:
            self._collect_oldest()

    def abandon(self) -> None:
        """Wait for the calls in flight, dropping their answers."""
        wait([future for future, _collect in self._flights])
        self._flights.clear()

    def _collect_oldest(self) -> None:
        future, collect = self._flights.popleft()
        collect(future.result())
