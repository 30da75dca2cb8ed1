"""The watcher loop: stream reads, the stall guard, reconnects, and polling fallback.

The session here is a recorder of what the watcher reports; the streams are coroutines
fed by the test, raising ccxt's own exception classes where the exchange would.
"""

from __future__ import annotations

import asyncio
from typing import Any

import ccxt

from planarpy.modes.runtime import Watcher

from livekit import until


class Recorder:
    """What a watcher needs of a session: record, report_error, describe, tell_error."""

    def __init__(self) -> None:
        self.records: list[tuple[str, dict]] = []
        self.errors: list[tuple[str, str]] = []
        self.s = self

    async def record(self, kind: str, payload: dict, symbol: str | None = None) -> None:
        self.records.append((kind, payload))

    async def report_error(self, e: BaseException, where: str, symbol: str | None = None) -> None:
        self.errors.append((where, f"{type(e).__name__}: {e}"))

    def describe(self, e: BaseException) -> str:
        return str(e)

    def tell_error(self, where: str, message: str) -> None:
        self.errors.append((where, message))


class Feed:
    """A stream whose messages (or exceptions) the test puts in a queue."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        self.reads = 0  # reads begun: the watcher is waiting on the stream

    async def read(self) -> Any:
        self.reads += 1
        item = await self.queue.get()
        if isinstance(item, BaseException):
            raise item
        return item


async def returns(value: Any) -> Any:
    return value


def make(fetch: Any = None, name: str = "orders", process: Any = None,
         **options: Any) -> tuple[Watcher, Recorder, Feed, list]:
    """A watcher on a fed stream; what it processes goes to the returned list. The REST
    fetch returns "rest" unless given."""
    session, feed, seen = Recorder(), Feed(), []

    async def append(d: Any) -> None:
        seen.append(d)

    w = Watcher(session, name, feed.read, fetch or (lambda: returns("rest")), process or append,
                **options)
    return w, session, feed, seen


def run(body) -> Any:
    return asyncio.run(body())


def test_messages_are_processed_in_order():
    async def body():
        w, session, feed, seen = make(name="orders", stall_after=5)
        w.start()
        for m in ("a", "b", "c"):
            feed.queue.put_nowait(m)
        await until(lambda: len(seen) == 3)
        await w.stop()
        return seen, w.running, session.records
    assert run(body) == (["a", "b", "c"], False, [])


def test_stall_guard_fetches_by_rest_and_keeps_the_pending_read():
    """Silent for stall_after: a REST fetch is processed and 'stalled' recorded; a message
    that then arrives on the stream is still processed (the read was never cancelled)."""
    async def body():
        w, session, feed, seen = make(name="orders", stall_after=0.05)
        w.start()
        await until(lambda: "rest" in seen)
        feed.queue.put_nowait("late message")
        await until(lambda: "late message" in seen)
        await w.stop()
        return seen, session.records
    seen, records = run(body)
    assert seen[0] == "rest" and "late message" in seen
    assert any(k == "exchange_error" and p["error"] == "stalled" for k, p in records)


def test_reconnect_refetches_with_the_first_new_message():
    """A network error records connection_lost; the first message after it is followed by a
    REST fetch (what happened meanwhile, the newest snapshot last) and connection_restored."""
    async def body():
        w, session, feed, seen = make(name="trades", stall_after=5)
        w.start()
        feed.queue.put_nowait(ccxt.NetworkError("socket closed"))
        feed.queue.put_nowait("after")
        await until(lambda: "after" in seen)
        await w.stop()
        return seen, [k for k, _ in session.records], session.errors
    seen, kinds, errors = run(body)
    assert seen == ["after", "rest"]
    assert kinds == ["connection_lost", "connection_restored"]
    assert errors == [("connection_lost:trades", "socket closed")]


def test_a_stream_the_exchange_cannot_serve_turns_into_polling():
    """ccxt saying a symbol is required (or not supported) is reported once, then the
    watcher polls its REST fetch every poll_every seconds."""
    async def body():
        w, session, feed, seen = make(lambda: returns("polled"), name="orders", stall_after=5, poll_every=0.02)
        w.start()
        feed.queue.put_nowait(ccxt.ArgumentsRequired("watchOrders() requires a symbol"))
        await until(lambda: seen.count("polled") >= 3)
        await w.stop()
        return session.errors, w.stream
    errors, stream = run(body)
    assert errors == [("orders", "ArgumentsRequired: watchOrders() requires a symbol")]
    assert stream is None


def test_an_unexpected_error_is_reported_and_the_watcher_goes_on():
    async def body():
        seen: list[str] = []

        async def process(d):
            if d == "bad":
                raise KeyError("missing field")
            seen.append(d)

        w, session, feed, _ = make(name="balance", process=process, stall_after=5)
        w.start()
        feed.queue.put_nowait("bad")
        feed.queue.put_nowait("good")
        await until(lambda: "good" in seen)
        await w.stop()
        return session.errors
    assert run(body) == [("balance", "KeyError: 'missing field'")]


def test_stop_ends_the_stall_guard_too():
    async def body():
        w, session, feed, _ = make(stall_after=0.01)
        w.start()
        await until(lambda: session.records)  # the guard has found the stream stalled
        await w.stop()
        await asyncio.sleep(0)
        return [t.get_name() for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert run(body) == []


def test_a_failed_refetch_after_a_reconnect_keeps_the_message_and_tries_again():
    async def body():
        fetches = []

        async def fetch():
            fetches.append(1)
            if len(fetches) == 1:
                raise ccxt.NetworkError("REST down too")
            return "rest"

        w, session, feed, seen = make(fetch, stall_after=5)
        w.start()
        feed.queue.put_nowait(ccxt.NetworkError("socket closed"))
        feed.queue.put_nowait("first")
        feed.queue.put_nowait("second")
        await until(lambda: "rest" in seen)
        await w.stop()
        return seen, [k for k, _ in session.records], session.errors
    seen, kinds, errors = run(body)
    assert seen == ["first", "second", "rest"]
    assert kinds == ["connection_lost", "connection_restored"]
    assert ("orders:rest", "NetworkError: REST down too") in errors


def test_not_supported_from_the_rest_fetch_leaves_the_stream_on():
    """Only the stream saying it cannot serve turns the watcher to polling; a REST fetch
    that is not supported (after a reconnect, say) is reported and the stream goes on."""
    async def body():
        async def fetch(): raise ccxt.NotSupported("fetchMyTrades() not supported")

        w, session, feed, seen = make(fetch, name="trades", stall_after=5)
        w.start()
        feed.queue.put_nowait(ccxt.NetworkError("socket closed"))
        feed.queue.put_nowait("a")
        feed.queue.put_nowait("b")
        await until(lambda: "b" in seen)
        stream_kept = w.stream is not None
        await w.stop()
        return seen, stream_kept, session.errors
    seen, stream_kept, errors = run(body)
    assert seen == ["a", "b"] and stream_kept
    assert ("trades:rest", "NotSupported: fetchMyTrades() not supported") in errors


def test_a_rest_snapshot_read_before_a_message_is_applied_before_it():
    """The guard's slow REST read started before a stream message arrived: the snapshot
    (older) goes in first, the message after it."""
    async def body():
        release = asyncio.Event()

        async def fetch():
            await release.wait()
            return "rest (older)"

        w, session, feed, seen = make(fetch, name="balance", stall_after=0.02)
        w.start()
        await until(lambda: any(k == "exchange_error" for k, _ in session.records))
        feed.queue.put_nowait("message (newer)")
        await until(feed.queue.empty)  # read: it now waits behind the REST snapshot
        release.set()
        await until(lambda: len(seen) >= 2)
        await w.stop()
        return seen[:2]
    assert run(body) == ["rest (older)", "message (newer)"]


def test_stop_then_start_at_once_leaves_one_running_watcher():
    """A start right after a stop began (an order sent while the idle stop runs) makes a
    new task that stays tracked; the old one ends."""
    async def body():
        w, session, feed, _ = make(stall_after=5)
        w.start()
        await until(lambda: feed.reads)  # running: waiting on the stream
        old = w.task
        stopping = asyncio.get_running_loop().create_task(w.stop())
        await asyncio.sleep(0)
        w.start()
        await stopping
        running = w.running and w.task is not old and old.done()
        await w.stop()
        return running
    assert run(body) is True


def test_a_watcher_started_by_a_call_does_not_hold_its_follow_ups_for_that_call():
    """Live starts the account's watchers inside the first order's call (watch_orders).
    What such a watcher sets off later (an OCO's other leg cancelled on a fill) is not
    that call's: it runs at once, not when that call returns (an order waiting for its
    first fill would hold it for as long as it waits)."""
    from planarpy.modes.runtime import EngineThread

    engine = EngineThread("test")
    out: dict[str, Any] = {}
    ran: list[str] = []

    async def main() -> None:
        engine.ready()
        holder: dict[str, Any] = {}

        async def process(d: Any) -> None:
            engine.soon(lambda: ran.append(d))

        async def order_action() -> str:  # starts the watchers, then waits for a fill
            w, _, feed, _ = make(process=process)
            w.start()
            holder["w"], holder["feed"] = w, feed
            try:
                await until(lambda: ran, timeout=2)
            except AssertionError:
                return "the follow-up waited for this call"
            return "the follow-up ran while this call waited"

        task = asyncio.get_running_loop().create_task(
            engine.run_strategy(lambda: engine.blocking(order_action(), 5)))
        await until(lambda: "feed" in holder)
        holder["feed"].queue.put_nowait("other order filled")
        out["call"] = await task
        await holder["w"].stop()

    engine.start(main, timeout=5)
    engine.join(10)
    assert out["call"] == "the follow-up ran while this call waited"
    assert ran == ["other order filled"]
