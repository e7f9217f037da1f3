"""A response body read ahead by a thread, so the network (or TLS) and the CSV work overlap.

Reading a socket releases the GIL, so while the exporter checks and writes one block the next
megabytes arrive: a page takes about the longer of the two instead of their sum. The reader
stays at most ``depth`` chunks ahead (bounded memory); whatever it raises is raised to the
consumer at that point of the stream. Leaving the ``with`` early (an error, a cancel) stops the
reader at its next chunk; one waiting in a read ends when the caller closes the response.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

_END = object()


@contextmanager
def read_ahead(chunks: Iterable[bytes], *, depth: int = 8) -> Iterator[Iterator[bytes]]:
    """The chunks of ``chunks``, read by a thread up to ``depth`` ahead; ``with`` it, so it stops."""
    ahead: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        source = iter(chunks)
        try:
            for chunk in source:
                if not put(chunk):
                    return
        except BaseException as e:  # handed to the consumer, raised where the stream broke
            put(e)
            return
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()
        put(_END)

    def consume() -> Iterator[bytes]:
        while True:
            item = ahead.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes)
            yield item

    reader = threading.Thread(target=read, name="sfbackup-read-ahead", daemon=True)
    reader.start()
    try:
        yield consume()
    except BaseException:
        stop.set()  # not joined: it may wait in a read until the caller closes the response
        raise
    stop.set()
    reader.join()
