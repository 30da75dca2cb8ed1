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
from typing import Any, Awaitable, Callable

import ccxt

Fetch = Callable[[], Awaitable[Any]]
Process = Callable[[Any], Awaitable[None]]


class Watcher:
    """One background stream with a REST fallback."""

    def __init__(self, session: Any, name: str, stream: Fetch | None, fetch: Fetch,
                 process: Process, *, symbol: str | None = None, stall_after: float = 10.0,
                 poll_every: float = 5.0) -> None:
        self.session = session
        self.name = name
        self.symbol = symbol
        self.stream = stream
        self.fetch = fetch
        self.process = process
        self.stall_after = stall_after
        self.poll_every = poll_every
        self.task: asyncio.Task[None] | None = None
        self.last_message = 0.0
        self.connected = True

    def start(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Cancel the watcher; never wait long on a ccxt stream that ignores cancellation."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.wait({self.task}, timeout=1.0)
        self.task = None

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    async def _restored(self) -> None:
        if not self.connected:
            self.connected = True
            await self.session.record("connection_restored", {"watcher": self.name}, self.symbol)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self.last_message = loop.time()
        guard = loop.create_task(self._guard(), name=f"{self.name}:stall-guard")
        backoff = 0.1
        try:
            while True:
                try:
                    if self.stream is None:  # the exchange has no stream: poll
                        await asyncio.sleep(self.poll_every)
                        await self.process(await self.fetch())
                        continue
                    # awaited directly, with no task or timer per message: the stall guard
                    # runs beside it and never cancels a read ccxt may be about to resolve
                    data = await self.stream()
                    self.last_message = loop.time()
                    if not self.connected:
                        backoff = 0.1
                        await self._restored()
                        await self.process(await self.fetch())
                    await self.process(data)
                except asyncio.CancelledError:
                    raise
                except (ccxt.ArgumentsRequired, ccxt.NotSupported) as e:
                    # this exchange cannot stream it this way (a symbol needed, say): poll
                    await self.session.report_error(e, where=self.name, symbol=self.symbol)
                    self.stream = None
                except (ccxt.NetworkError, ccxt.ExchangeNotAvailable, ConnectionError) as e:
                    if self.connected:
                        self.connected = False
                        message = self.session.describe(e)
                        await self.session.record("connection_lost", {
                            "watcher": self.name, "error": message}, self.symbol)
                        self.session.s.on_error(f"connection_lost:{self.name}", message)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                except Exception as e:  # an unexpected error must not kill the watcher silently
                    await self.session.report_error(e, where=self.name, symbol=self.symbol)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
        finally:
            guard.cancel()

    async def _guard(self) -> None:
        """The stall guard: after `stall_after` seconds with no message, fetch by REST (and
        again every `stall_after` seconds while the stream stays silent)."""
        loop = asyncio.get_running_loop()
        while True:
            wait = self.last_message + self.stall_after - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            self.last_message = loop.time()
            if self.stream is None:
                continue  # polling already
            await self.session.record("exchange_error", {
                "watcher": self.name, "error": "stalled",
                "detail": f"no message for {self.stall_after:g} s: fetching by REST"}, self.symbol)
            try:
                await self.process(await self.fetch())
                await self._restored()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                await self.session.report_error(e, where=f"{self.name}:rest", symbol=self.symbol)
