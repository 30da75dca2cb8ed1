"""The engine's bridge: strategy code on the loop (greenlet) and from other threads."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable

import pytest

from planarpy.modes.runtime import EngineThread
from planarpy.modes.runtime.engine import EngineStopped

from livekit import until


def run_engine(body: Callable[[EngineThread], Any]) -> Any:
    """Start an engine whose main coroutine awaits `body(engine)`, and return its result."""
    engine = EngineThread("test")
    result: dict[str, Any] = {}

    async def main() -> None:
        engine.ready()
        result["value"] = await body(engine)

    engine.start(main, timeout=5)
    engine.join(10)
    return result["value"]


async def answer(x: int) -> int:
    await asyncio.sleep(0.01)  # an action that takes a while
    return x * 2


def test_strategy_code_calls_without_leaving_the_loop_thread():
    """A call from strategy code suspends it on the loop thread and resumes it with the result;
    the state lock is held while the code runs and free while the call is awaited."""
    async def body(engine: EngineThread) -> Any:
        seen: list[Any] = []
        observed_free = []

        async def watcher() -> None:
            # its first step: the loop runs it only once the strategy code waits in its call
            observed_free.append(not engine.lock.locked())

        def strategy_code() -> str:
            seen.append(threading.get_ident() == engine.thread.ident)
            seen.append(engine.lock.locked())
            asyncio.get_running_loop().create_task(watcher())
            seen.append(engine.blocking(answer(21), timeout=5))
            seen.append(engine.blocking(answer(1), timeout=5))
            seen.append(engine.lock.locked())
            return "done"

        out = await engine.run_strategy(strategy_code)
        return out, seen, observed_free, engine.lock.locked()

    out, seen, observed_free, locked_after = run_engine(body)
    assert out == "done" and seen == [True, True, 42, 2, True]
    assert observed_free == [True] and locked_after is False


def test_an_exception_in_the_call_reaches_the_strategy_code_which_may_go_on():
    async def fails() -> None:
        raise ValueError("the exchange said no")

    async def body(engine: EngineThread) -> Any:
        def strategy_code() -> list[str]:
            out = []
            try:
                engine.blocking(fails(), timeout=5)
            except ValueError as e:
                out.append(str(e))
            out.append(str(engine.blocking(answer(5), timeout=5)))
            return out
        return await engine.run_strategy(strategy_code)

    assert run_engine(body) == ["the exchange said no", "10"]


def test_an_exception_in_strategy_code_propagates_and_frees_the_lock():
    async def body(engine: EngineThread) -> Any:
        def strategy_code() -> None:
            engine.blocking(answer(1), timeout=5)
            raise KeyError("bug in tick")
        with pytest.raises(KeyError, match="bug in tick"):
            await engine.run_strategy(strategy_code)
        return engine.lock.locked()

    assert run_engine(body) is False


def test_a_call_that_outlives_its_timeout_raises_timeout_and_the_action_runs_on():
    """As for a caller on another thread: the strategy code gets TimeoutError, and the
    action is not cut off halfway (an order half sent must finish its bookkeeping)."""
    async def body(engine: EngineThread) -> Any:
        finished = asyncio.Event()

        async def slow() -> None:
            await asyncio.sleep(0.2)  # the action outlives the call's timeout
            finished.set()

        def strategy_code() -> str:
            try:
                engine.blocking(slow(), timeout=0.05)
            except TimeoutError:
                return "timed out"
            return "no timeout"
        out = await engine.run_strategy(strategy_code)
        await asyncio.wait_for(finished.wait(), 2)
        return out, finished.is_set()

    assert run_engine(body) == ("timed out", True)


def test_a_cancelled_run_stops_even_if_the_strategy_code_swallows_it():
    """Stopping cancels the tick: the code sees CancelledError at its call; calls it makes
    after swallowing it are not run, and the cancellation still ends the run."""
    async def body(engine: EngineThread) -> Any:
        seen: list[str] = []

        def strategy_code() -> None:
            entered.append(True)
            for _ in range(3):
                try:
                    engine.blocking(asyncio.sleep(10), timeout=None)
                except BaseException as e:  # a careless strategy
                    seen.append(type(e).__name__)

        entered: list[bool] = []
        task = asyncio.get_running_loop().create_task(engine.run_strategy(strategy_code))
        await until(lambda: entered)  # the code runs on the loop: it now waits in its call
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2)
        return seen, bool(done) and task.cancelled(), engine.lock.locked()

    assert run_engine(body) == (["CancelledError"] * 3, True, False)


def test_cancelled_while_taking_the_lock_back_from_a_script_thread():
    """If the run is cancelled while a script's thread holds the lock, the strategy code
    still resumes under the lock (not in the script's critical section), and the lock
    ends free."""
    async def body(engine: EngineThread) -> Any:
        held, go = threading.Event(), threading.Event()
        inside: list[bool] = []
        answered: list[bool] = []

        def script() -> None:
            with engine.locked():
                held.set()
                go.wait(5)

        async def call() -> int:
            value = await answer(1)
            answered.append(True)
            return value

        def strategy_code() -> None:
            try:
                engine.blocking(call(), timeout=5)
            finally:
                inside.append(engine.lock.locked() and go.is_set())  # resumed after the script

        t = threading.Thread(target=script)
        task = asyncio.get_running_loop().create_task(engine.run_strategy(strategy_code))
        await asyncio.sleep(0)  # the strategy code is now waiting in its call
        t.start()
        await asyncio.to_thread(held.wait, 5)
        await until(lambda: answered)  # the call is done
        for _ in range(2):  # loop turns, not time: the run wakes up and polls for the lock
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.sleep(0.05)  # a window of silence: the run must not end in it
        assert not task.done()  # still waiting for the script to let go
        go.set()
        await asyncio.wait({task}, timeout=2)
        await asyncio.to_thread(t.join, 5)
        return task.cancelled(), inside, engine.lock.locked()

    assert run_engine(body) == (True, [True], False)


def test_a_tick_calling_another_engine_blocks_on_that_engine():
    """Strategy code of engine A may call into engine B (another run): that call goes to
    B's loop, not A's."""
    other = EngineThread("other")

    async def other_main() -> None:
        other.ready()
        await asyncio.sleep(5)

    other.start(other_main, timeout=5)

    async def on_other() -> bool:
        return asyncio.get_running_loop() is other.loop

    async def body(engine: EngineThread) -> Any:
        def strategy_code() -> bool:
            with other.locked():
                return other.blocking(on_other(), timeout=2)
        return await engine.run_strategy(strategy_code)

    assert run_engine(body) is True


def test_strategy_code_sees_the_context_of_whoever_runs_it():
    import contextvars
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    async def body(engine: EngineThread) -> str:
        var.set("the engine's")
        return await engine.run_strategy(var.get)

    assert run_engine(body) == "the engine's"


def test_call_from_a_plain_callback_on_the_loop_is_refused_clearly():
    """Callbacks run by the engine outside strategy code (on_trade, say) cannot block the loop."""
    async def body(engine: EngineThread) -> str:
        coro = answer(1)
        try:
            engine.blocking(coro, timeout=5)
        except RuntimeError as e:
            return str(e)
        return "no error"

    message = run_engine(body)
    assert "would deadlock" in message and "tick()" in message


def test_call_from_another_thread_while_strategy_code_waits():
    """A script's thread calls in while a tick is suspended in its own call: both complete."""
    async def body(engine: EngineThread) -> Any:
        box: dict[str, Any] = {}

        def script() -> None:
            with engine.locked():
                box["script"] = engine.blocking(answer(100), timeout=5)

        def strategy_code() -> int:
            t = threading.Thread(target=script)
            t.start()
            value = engine.blocking(answer(3), timeout=5)
            box["thread"] = t
            return value

        value = await engine.run_strategy(strategy_code)
        await asyncio.to_thread(box["thread"].join, 5)
        return value, box["script"]

    assert run_engine(body) == (6, 200)


def test_call_after_the_engine_stopped_raises_engine_stopped():
    engine = EngineThread("test")

    async def main() -> None:
        engine.ready()

    engine.start(main, timeout=5)
    engine.join(5)
    coro = answer(1)
    with pytest.raises(EngineStopped, match="not running"):
        engine.blocking(coro, timeout=1)


def test_a_cancelled_wait_for_the_lock_does_not_leave_it_taken():
    """A task cancelled while it waits for the state lock (held by a script's thread) must
    not end up holding it once that thread lets go."""
    engine = EngineThread("test")
    held, go = threading.Event(), threading.Event()

    def script() -> None:
        with engine.locked():
            held.set()
            go.wait(5)

    async def body(engine: EngineThread) -> bool:
        t = threading.Thread(target=script)
        t.start()
        await asyncio.to_thread(held.wait, 5)

        async def wants_lock() -> None:
            async with engine.mutating():
                pass

        task = asyncio.get_running_loop().create_task(wants_lock())
        await asyncio.sleep(0)  # one loop turn, not time: its first step polls for the lock
        task.cancel()
        go.set()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.to_thread(t.join, 5)
        return engine.lock.locked()

    async def main() -> None:
        engine.ready()
        box["locked"] = await body(engine)

    box: dict[str, Any] = {}
    engine.start(main, timeout=5)
    engine.join(10)
    assert box["locked"] is False


def test_what_a_calls_action_sets_off_runs_before_the_call_returns():
    """`soon` from the action a call waits for (a fill in an order's reply: a bracket's
    exits) runs in the caller, under the lock, before its call returns, from strategy
    code on the loop and from a script thread alike; `soon` from other loop code (a
    watcher's fill) does not wait for the call: it runs while the call still waits."""
    async def body(engine: EngineThread) -> Any:
        order: list[str] = []
        watcher_ran = asyncio.Event()

        def follow_up(name: str) -> None:  # it acts too: placing exits waits for them
            locked = engine.lock.locked()
            order.append(f"{name} follow-up, locked={locked}: {engine.blocking(answer(1), 5)}")

        async def action(name: str) -> str:
            await asyncio.sleep(0.01)  # the reply, then its fill applied: the last step
            engine.soon(lambda: follow_up(name))
            return name

        async def slow_action() -> str:
            await watcher_ran.wait()  # a watcher's follow-up ran while this call waits
            return "slow"

        async def watcher() -> None:
            engine.soon(lambda: order.append("watcher follow-up"))
            watcher_ran.set()

        def strategy_code() -> None:
            order.append(engine.blocking(action("loop"), timeout=5))
            asyncio.get_running_loop().create_task(watcher())
            order.append(engine.blocking(slow_action(), timeout=5))

        await engine.run_strategy(strategy_code)

        def script() -> None:
            with engine.locked():
                order.append(engine.blocking(action("thread"), timeout=5))
        await asyncio.to_thread(script)
        return order

    assert run_engine(body) == ["loop follow-up, locked=True: 2", "loop",
                                "watcher follow-up", "slow",
                                "thread follow-up, locked=True: 2", "thread"]


def test_what_a_calls_action_set_off_still_runs_when_the_caller_is_cancelled():
    """A tick cancelled (the run stops) while its call's action goes on: what that action
    set off before (two brackets' exits) is not lost with the tick; each still acts."""
    async def body(engine: EngineThread) -> Any:
        acted: list[str] = []
        kept = asyncio.Event()

        def follow_up(name: str) -> None:
            acted.append(f"{name}: {engine.blocking(answer(1), 5)}")

        async def action() -> None:
            engine.soon(lambda: follow_up("first"))
            engine.soon(lambda: follow_up("second"))
            kept.set()
            await asyncio.sleep(0.2)  # the action goes on after the caller is cancelled

        def strategy_code() -> None:
            engine.blocking(action(), timeout=None)

        task = asyncio.get_running_loop().create_task(engine.run_strategy(strategy_code))
        await asyncio.wait_for(kept.wait(), 2)
        task.cancel()
        await asyncio.wait({task}, timeout=2)
        await until(lambda: len(acted) == 2, timeout=3)
        return sorted(acted)

    assert run_engine(body) == ["first: 2", "second: 2"]
