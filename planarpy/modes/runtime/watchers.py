"""Background watchers: one generic loop, specialised for balance, positions, orders, trades.

A watcher waits on a ccxt.pro stream. When the stream is silent for `stall_after`
seconds it falls back to a REST fetch (the stall guard); when the connection breaks it
records the loss, backs off, and on the first message after reconnecting re-fetches by
REST, so a fill that happened while the stream was down is never missed. A stream the
exchange cannot serve that way (ccxt says arguments are required, or not supported) is
replaced by polling the REST fetch every `poll_every` seconds.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import ccxt

from .engine import detached

if TYPE_CHECKING:  # the session calls this module: imported for the annotations only
    from .session import Session

Fetch = Callable[[], Awaitable[Any]]
Process = Callable[[Any], Awaitable[None]]


class Watcher:
    """One background stream with a REST fallback."""

    def __init__(self, session: Session, name: str, stream: Fetch | None, fetch: Fetch,
                 process: Process, *, symbol: str | None = None, stall_after: float = 10.0,
                 poll_every: float = 5.0, process_rest: Process | None = None) -> None:
        self.session = session
        self.name = name
        self.symbol = symbol
        self.stream = stream
        self.fetch = fetch
        self.process = process
        self.process_rest = process_rest or process  # what the REST fetch brought
        self.stall_after = stall_after
        self.poll_every = poll_every
        self.task: asyncio.Task[None] | None = None
        self.guard: asyncio.Task[None] | None = None
        self.last_message = 0.0
        self.connected = True
        self.resync = False  # a REST re-fetch is due (the stream came back after a loss)
        # the stream loop and the stall guard apply in the order they read: a REST
        # snapshot taken before a message must not be applied after it
        self._applying = asyncio.Lock()

    def start(self) -> None:
        if self.task is None or self.task.done():
            loop = asyncio.get_running_loop()
            self.last_message = loop.time()
            # not in the context of a call that starts it (its follow-ups are not the call's)
            self.task = loop.create_task(self._run(), name=self.name, context=detached())
            self.guard = loop.create_task(self._guard(), name=f"{self.name}:stall-guard",
                                          context=detached())

    def detach(self) -> list[asyncio.Task[None]]:
        """Cancel the watcher's tasks and forget them at once (a `start` right after makes
        new ones); returns them, for the caller to await."""
        tasks = [t for t in (self.task, self.guard) if t is not None and not t.done()]
        self.task = self.guard = None
        for t in tasks:
            t.cancel()
        return tasks

    async def stop(self) -> None:
        """Cancel the watcher; never wait long on a ccxt stream that ignores cancellation."""
        tasks = self.detach()
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    async def _fetch_and_apply(self) -> None:
        async with self._applying:  # the fetch too: what it read must go in before later news
            await self.process_rest(await self.fetch())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = 0.1
        while True:
            try:
                if self.stream is None:  # the exchange has no stream: poll
                    await asyncio.sleep(self.poll_every)
                    await self._fetch_and_apply()
                    continue
                # awaited directly, with no task or timer per message: the stall guard runs
                # beside it and never cancels a read ccxt may be about to resolve
                try:
                    data = await self.stream()
                except (ccxt.ArgumentsRequired, ccxt.NotSupported) as e:
                    # this exchange cannot stream it this way (a symbol needed, say): poll
                    await self.session.report_error(e, where=self.name, symbol=self.symbol)
                    self.stream = None
                    continue
                self.last_message = loop.time()
                if not self.connected:
                    self.connected, self.resync, backoff = True, True, 0.1
                    await self.session.record("connection_restored", {"watcher": self.name},
                                              self.symbol)
                async with self._applying:
                    await self.process(data)
                    if self.resync:  # back after a loss: what happened meanwhile, by REST
                        await self._resync()
            except asyncio.CancelledError:
                raise
            except (ccxt.NetworkError, ccxt.ExchangeNotAvailable, ConnectionError) as e:
                if self.connected:
                    self.connected = False
                    message = self.session.describe(e)
                    await self.session.record("connection_lost", {
                        "watcher": self.name, "error": message}, self.symbol)
                    self.session.tell_error(f"connection_lost:{self.name}", message)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception as e:  # an unexpected error must not kill the watcher silently
                await self.session.report_error(e, where=self.name, symbol=self.symbol)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _resync(self) -> None:
        """The REST re-fetch after a reconnect; tried again with the next message if the
        exchange's REST side fails too."""
        try:
            await self.process_rest(await self.fetch())
        except (ccxt.NetworkError, ccxt.ExchangeNotAvailable, ccxt.NotSupported,
                ConnectionError) as e:
            await self.session.report_error(e, where=f"{self.name}:rest", symbol=self.symbol)
        else:
            self.resync = False

    async def _guard(self) -> None:
        """The stall guard: after `stall_after` seconds with no message, fetch by REST (and
        again every `stall_after` seconds while the stream stays silent). It does not mark
        a lost connection restored: only the stream's next message does, with a re-fetch."""
        loop = asyncio.get_running_loop()
        while True:
            wait = self.last_message + self.stall_after - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            self.last_message = loop.time()
            if self.stream is None:
                continue  # polling already
            try:
                await self.session.record("exchange_error", {
                    "watcher": self.name, "error": "stalled",
                    "detail": f"no message for {self.stall_after:g} s: fetching by REST"},
                    self.symbol)
                await self._fetch_and_apply()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the guard must outlive any one failed fetch
                try:
                    await self.session.report_error(e, where=f"{self.name}:rest", symbol=self.symbol)
                except Exception:
                    pass
