"""The engine: an event loop on its own thread that owns the exchange I/O.

The strategy's code stays synchronous. Its callbacks that may act (start, tick, stop) run
on the engine's loop in a greenlet holding the state lock: a `call` there suspends the
greenlet, the loop awaits the action (the lock released meanwhile, so the watchers apply
what the exchange reports), then the greenlet resumes with the result. No thread hop: on
a virtual machine, waking an idle thread costs a few hundred microseconds each way, more
than the rest of a call. The same `call` from another thread (a script, a REPL, a
Jupyter cell) sends the action to the loop and blocks that thread. Every state change
goes through `emit` (record in the trace, then apply) under the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
import time
from concurrent.futures import Future
from typing import Any, Awaitable, Callable, Iterator

import anyio
import greenlet

from ...core.errors import PlanarError

log = logging.getLogger(__name__)


class EngineStopped(PlanarError, RuntimeError):
    """The engine is not running (it failed to start, or was stopped)."""


class ExchangeClock:
    """Exchange time: wall time corrected by the offset ccxt measured from the server.

    `now()` is the exchange's time (ms), what orders are dated with; it jumps when the
    offset is measured again. `now_ns()` stamps the trace: local time that never goes
    back (the wall clock when made, plus the monotonic time since).
    """

    __slots__ = ("client", "_wall0", "_mono0")
    speed = 1.0  # exchange ms per wall ms: it runs in real time

    def __init__(self, client: Any) -> None:
        self.client = client
        self._wall0 = time.time_ns()
        self._mono0 = time.monotonic_ns()

    def now(self) -> int:
        offset = (self.client.options or {}).get("timeDifference", 0) if self.client else 0
        return time.time_ns() // 1_000_000 - int(offset or 0)

    def now_ns(self) -> int:
        return self._wall0 + time.monotonic_ns() - self._mono0


class _Kept:
    """Strategy-side code that a caller's action set off (`EngineThread.soon`), for the
    caller to run before its call returns; `open` until it does."""

    __slots__ = ("fns", "open")

    def __init__(self) -> None:
        self.fns: list[Callable[[], Any]] = []
        self.open = True


# the _Kept of the caller whose action the running task is (set in the action's context)
_KEPT: contextvars.ContextVar[_Kept | None] = contextvars.ContextVar("planarpy_kept",
                                                                     default=None)


def detached() -> contextvars.Context:
    """A copy of the current context that belongs to no caller's action: for a task that
    outlives the call that starts it (a watcher), whose follow-ups are not that call's."""
    context = contextvars.copy_context()
    context.run(_KEPT.set, None)
    return context


async def _for_caller(coro: Awaitable[Any], kept: _Kept) -> Any:
    """Run a thread caller's action with its `_Kept` (a task's context is its own)."""
    _KEPT.set(kept)
    return await coro


class _StrategyGreenlet(greenlet.greenlet):
    """Strategy code running on an engine's loop (see `EngineThread.run_strategy`)."""

    engine: "EngineThread"


class _Mutating:
    """The async context of `EngineThread.mutating`: a plain class, as it runs for every
    event (a generator-based context manager costs several times more)."""

    __slots__ = ("lock",)

    def __init__(self, lock: threading.Lock) -> None:
        self.lock = lock

    async def __aenter__(self) -> None:
        await self.acquire()

    async def acquire(self) -> None:
        """Take the lock without blocking the loop. Polled, not waited for in a worker
        thread: a task cancelled while a worker waits would leave the lock taken by that
        worker for good (anyio abandons the thread when a plain asyncio task is
        cancelled). Contention is rare and short: another thread holds the lock only while
        it runs strategy code outside a call."""
        delay = 0.0001
        while not self.lock.acquire(blocking=False):
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.002)

    async def __aexit__(self, *exc: Any) -> None:
        self.lock.release()


class EngineThread:
    """An asyncio loop in a daemon thread, a state lock, and a blocking bridge to the loop."""

    def __init__(self, name: str, describe: Callable[[BaseException], str] = repr) -> None:
        self.name = name
        self.describe = describe  # an exception as a log line may show it (no credentials)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()
        self._owner: int | None = None
        self._ready = threading.Event()
        self._main_done: Future[Any] = Future()
        self._mutating = _Mutating(self.lock)
        self._fired: set[asyncio.Future[Any]] = set()
        self._kept_lock = threading.Lock()  # a caller closes its _Kept as the loop adds

    # ---- lifecycle --------------------------------------------------------------------
    def start(self, main: Callable[[], Awaitable[Any]], timeout: float) -> None:
        """Run `main()` on a new loop thread; return once it called `ready()`."""
        self.launch(main)
        self.wait_ready(timeout)

    def launch(self, main: Callable[[], Awaitable[Any]]) -> None:
        """Run `main()` on a new loop thread (`wait_ready` waits for its start-up)."""
        def run() -> None:
            try:
                result = anyio.run(self._run_main, main)
                self._main_done.set_result(result)
            except BaseException as e:  # reported to whoever waits on start/stop
                self._main_done.set_exception(e)
            finally:
                self._ready.set()
        self.thread = threading.Thread(target=run, name=f"planarpy-{self.name}", daemon=True)
        self.thread.start()

    def wait_ready(self, timeout: float) -> None:
        """Wait until `main` called `ready()`; its error if it ended first."""
        if not self._ready.wait(timeout):
            raise EngineStopped(f"{self.name}: the engine did not start within {timeout:g} s")
        if self._main_done.done() and self._main_done.exception() is not None:
            raise self._main_done.exception()  # type: ignore[misc]

    async def _run_main(self, main: Callable[[], Awaitable[Any]]) -> Any:
        self.loop = asyncio.get_running_loop()
        return await main()

    def ready(self) -> None:
        self._ready.set()

    def join(self, timeout: float) -> None:
        if self.thread is not None:
            self.thread.join(timeout)
        if self._main_done.done() and self._main_done.exception() is not None:
            raise self._main_done.exception()  # type: ignore[misc]

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive() and self.loop is not None

    # ---- the state lock ---------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the state lock on a thread other than the engine's (a script calling, or
        reading a consistent snapshot of the state)."""
        self.lock.acquire()
        self._owner = threading.get_ident()
        try:
            yield
        finally:
            self._owner = None
            self.lock.release()

    def mutating(self) -> "_Mutating":
        """`async with` it to hold the state lock on the loop, without blocking the loop
        while another thread holds it."""
        return self._mutating

    # ---- the bridge -------------------------------------------------------------------
    async def run_strategy(self, fn: Callable[[], Any]) -> Any:
        """Run strategy code `fn` on this loop, holding the state lock while it runs.

        Each `blocking` call it makes hands (coroutine, timeout) up here: the lock is
        released, the action runs as a task, and `fn` resumes under the lock with its
        result or its exception. As for a call from another thread, a timeout leaves the
        action running (an order half sent must finish its bookkeeping), and so does a
        cancellation of this task, which `fn` then receives at its call; if `fn` goes on
        calling, those calls are not run, and the cancellation is raised when it returns.
        """
        g = _StrategyGreenlet(fn)
        g.engine = self
        g.gr_context = contextvars.copy_context()  # what a worker thread would have seen
        await self._mutating.acquire()
        cancelled: BaseException | None = None
        try:
            step = g.switch()
            while not g.dead:
                coro, timeout, kept = step
                self.lock.release()
                value: Any = None
                error: BaseException | None = cancelled
                if cancelled is not None:
                    _discard(coro)
                else:
                    context = contextvars.copy_context()
                    context.run(_KEPT.set, kept)
                    task = asyncio.get_running_loop().create_task(coro, context=context)
                    try:
                        done, _ = await asyncio.wait({task}, timeout=timeout)
                        if done:
                            value = task.result()
                        else:
                            error = TimeoutError(f"{self.name}: no answer within {timeout:g} s")
                    except asyncio.CancelledError as e:
                        error = cancelled = e
                    except BaseException as e:  # the action's own error, as the caller sees it
                        error = e
                late = await self._reacquire()
                if late is not None:
                    error = cancelled = cancelled or late
                step = g.throw(error) if error is not None else g.switch(value)
            if cancelled is not None:
                raise cancelled
            return step
        finally:
            self.lock.release()

    async def _reacquire(self) -> BaseException | None:
        """Take the state lock back whatever happens; a cancellation meanwhile is returned,
        not raised (the strategy code must resume under the lock to see it)."""
        cancelled = None
        while True:
            try:
                await self._mutating.acquire()
                return cancelled
            except asyncio.CancelledError as e:
                cancelled = e

    def fire(self, coro: Awaitable[Any]) -> None:
        """Start `coro` on the loop without waiting for it (from any thread); `drain`
        waits for whatever is still running before the engine closes its client."""
        def start() -> None:
            task = asyncio.ensure_future(coro)
            self._fired.add(task)
            task.add_done_callback(self._fired_done)
        if self.thread is not None and threading.get_ident() == self.thread.ident:
            start()
        else:
            self.loop.call_soon_threadsafe(start)  # type: ignore[union-attr]

    def _fired_done(self, task: asyncio.Future[Any]) -> None:
        self._fired.discard(task)
        if not task.cancelled() and task.exception() is not None:  # actions report their own
            log.error("%s: a fire-and-forget action failed: %s", self.name,
                      self.describe(task.exception()))

    async def drain(self, timeout: float) -> None:
        """Wait up to `timeout` for the actions started by `fire`."""
        if self._fired:
            await asyncio.wait(set(self._fired), timeout=timeout)

    def can_block(self) -> bool:
        """Whether the caller may wait for an action (`blocking`): strategy code on the
        loop, or any other thread; not code the loop runs itself (a watcher's)."""
        current = greenlet.getcurrent()
        if isinstance(current, _StrategyGreenlet) and current.engine is self:
            return True
        return self.thread is None or threading.get_ident() != self.thread.ident

    def soon(self, fn: Callable[[], Any], caller: _Kept | None = None) -> None:
        """Run strategy-side code `fn` (it may act) now if the caller can wait for its
        actions; if a call's action set it off (the fill in a market order's reply sets
        off a bracket's exits), or the call `caller` (`calling()`) still waits for the
        order whose event set it off (a fill streamed while it waits), by that caller
        before its call returns, so that the strategy's next call meets the state `fn`
        leaves, as in a backtest; else as strategy code on the loop as soon as it is free."""
        if self.can_block():
            fn()
            return
        for kept in (_KEPT.get(), caller):
            if kept is not None:
                with self._kept_lock:
                    if kept.open:
                        kept.fns.append(fn)
                        return
        self.fire(self.run_strategy(fn))

    @staticmethod
    def calling() -> _Kept | None:
        """The call whose action runs now (None outside one), for `soon(fn, caller)`."""
        return _KEPT.get()

    @contextlib.contextmanager
    def holding(self) -> Iterator[_Kept]:
        """Keep what `soon` is given in the block's task (and tasks it starts), as for a
        caller's action, until `release`: a live restart settles carried orders before
        its sync, and what their fills set off needs the balances the sync reads."""
        kept = _Kept()
        token = _KEPT.set(kept)
        try:
            yield kept
        finally:
            _KEPT.reset(token)

    async def release(self, kept: _Kept) -> None:
        """Run, in turn and as strategy code, what `holding` kept; later ones go at once."""
        with self._kept_lock:
            kept.open = False
            fns, kept.fns = kept.fns, []
        for fn in fns:
            await self.run_strategy(fn)

    def _run_kept(self, kept: _Kept, may_run: bool) -> None:
        """A caller's action is over (or it stopped waiting): it runs what its action set
        off (`may_run`: it holds the state lock and may act), else that goes to the loop;
        what the action sets off later goes to the loop too."""
        with self._kept_lock:
            kept.open = False
            fns, kept.fns = kept.fns, []
        for i, fn in enumerate(fns):
            if not may_run:
                self.fire(self.run_strategy(fn))
                continue
            try:
                fn()
            except Exception as e:  # as for a fired one: actions report their own failures
                log.error("%s: an action set off by a call failed: %s", self.name,
                          self.describe(e))
            except BaseException:  # the caller is stopped: the rest go to the loop
                for rest in fns[i + 1:]:
                    self.fire(self.run_strategy(rest))
                raise

    def blocking(self, coro: Awaitable[Any], timeout: float | None) -> Any:
        """Run `coro` on the engine's loop and wait for it: suspended, from strategy code
        on the loop; blocked, from any other thread."""
        if not self.running:
            _discard(coro)
            raise EngineStopped(f"{self.name}: the engine is not running")
        current = greenlet.getcurrent()
        kept = _Kept()
        if isinstance(current, _StrategyGreenlet) and current.engine is self:
            may_run = True  # the greenlet holds the state lock again
            try:
                return current.parent.switch((coro, timeout, kept))  # type: ignore[union-attr]
            except asyncio.CancelledError:  # its run is stopped: calls it makes are not run
                may_run = False
                raise
            finally:
                self._run_kept(kept, may_run)
        if threading.get_ident() == self.thread.ident:  # type: ignore[union-attr]
            _discard(coro)
            raise RuntimeError("call() from a callback running on the engine's loop would "
                               "deadlock; act from tick() or from another thread instead")
        held = self._owner == threading.get_ident()
        if held:  # before scheduling: the coroutine's first state change needs the lock
            self._owner = None
            self.lock.release()
        fut = asyncio.run_coroutine_threadsafe(_for_caller(coro, kept),
                                               self.loop)  # type: ignore[arg-type]
        try:
            return fut.result(timeout)
        finally:
            if held:
                self.lock.acquire()
                self._owner = threading.get_ident()
            self._run_kept(kept, held)


def _discard(coro: Awaitable[Any]) -> None:
    """Close a coroutine that will not run (no "never awaited" warning)."""
    close = getattr(coro, "close", None)
    if close:
        close()
