"""Blocking ragpress work under asyncio: in worker threads, so concurrent queries overlap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import TypeVar

T = TypeVar("T")


async def in_thread(items: Iterator[T]) -> AsyncIterator[T]:
    """Yield what the blocking iterator ``items`` yields, each step in a worker thread, so the event
    loop runs other work while a model generates."""
    done = object()
    while (item := await asyncio.to_thread(next, items, done)) is not done:
        yield item
