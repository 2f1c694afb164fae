"""Paging through a collection: ``@odata.nextLink`` followed verbatim, a loop guard, the next page prefetched."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import Any

from dynasync.synapses.dynamics.errors import PagingLoopError, RequestRejectedError, request_id_of
from dynasync.synapses.dynamics.wire import DataverseResponse, Page

__all__ = ["PageFetcher", "follow_pages", "parse_page"]

PageFetcher = Callable[[str, asyncio.Event | None], Coroutine[Any, Any, DataverseResponse]]
"""GETs one page URL; sets the event (when given) once the request is on the wire."""

# Event-loop turns a prefetch may take to get its request onto the wire before the caller goes back to work
# (a TLS connection needs about four).
_SEND_TURNS = 64


async def follow_pages(
    url: str, fetch: PageFetcher, absolute: Callable[[str], str], *, prefetch: bool = True
) -> AsyncGenerator[Page, None]:
    """Yield every page from ``url`` on.

    Args:
        url: The first page.
        fetch: Sends one GET (with the client's retries, throttling and error mapping).
        absolute: Turns a link into the absolute URL it names (refusing links off the org).
        prefetch: Ask for the next page before handing out the current one, so the service prepares it while
            the caller works on this one. A failure of that request surfaces when the caller asks for its page;
            closing the generator cancels it.

    Raises:
        PagingLoopError: A next link seen before (paging would never end).
    """
    seen: set[str] = set()
    current: str | None = url
    pending: asyncio.Task[DataverseResponse] | None = None
    try:
        while current is not None:
            seen.add(absolute(current))
            if pending is None:
                response = await fetch(current, None)
            else:
                response = await pending
                pending = None
            page = parse_page(response, current)
            if page.next_link is not None and absolute(page.next_link) in seen:
                raise PagingLoopError(
                    f"Dataverse returned the same next page link twice: {page.next_link}",
                    remedy="Paging would never end; report this with the request id. A unique sort order "
                    "(add the primary key to $orderby) avoids it.",
                    status=response.status,
                    request_id=request_id_of(response.headers),
                )
            if page.next_link is not None and prefetch:
                sent = asyncio.Event()
                pending = asyncio.create_task(fetch(page.next_link, sent))
                await _until_sent(pending, sent)
            yield page
            current = page.next_link
    finally:
        if pending is not None:
            await _discard(pending)


def parse_page(response: DataverseResponse, url: str) -> Page:
    """Parse one collection page.

    Raises:
        RequestRejectedError: The body is not a collection.
    """
    body = response.json()
    if not isinstance(body, dict) or not isinstance(body.get("value"), list):
        raise RequestRejectedError(
            f"Expected a collection from {url}, got something else.",
            remedy="The URL does not name a collection; check the table's entity set name.",
            status=response.status,
            request_id=request_id_of(response.headers),
        )
    next_link = body.get("@odata.nextLink") or body.get("odata.nextLink")
    return Page(
        rows=body["value"],
        next_link=str(next_link) if next_link else None,
        delta_link=body.get("@odata.deltaLink"),
        body=body,
        preference_applied=response.headers.get("Preference-Applied"),
    )


async def _until_sent(task: asyncio.Task[Any], sent: asyncio.Event) -> None:
    """Let ``task`` run until its request is sent (or it finished, or waits for something else, e.g. a throttle).

    Without this the request would only leave when the caller next awaits, after its CPU-bound work on the
    current page, and the service could not prepare the next page meanwhile.
    """
    for _ in range(_SEND_TURNS):
        if sent.is_set() or task.done():
            return
        await asyncio.sleep(0)


async def _discard(task: asyncio.Task[Any]) -> None:
    """Cancel a prefetch nobody will take and wait for it to wind down (its outcome is dropped)."""
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled():
        task.exception()  # mark it retrieved: a failed page nobody asked for is not an error
