"""Open a page in headless Chromium (Debian's package) over the DevTools protocol: wait
for a condition, collect console errors and uncaught exceptions, take a screenshot.

Chromium runs with a fresh profile and no network features (the machine has none)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from typing import Any

import aiohttp

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--remote-debugging-port=0", "--remote-allow-origins=*")


def chromium() -> str | None:
    """The Chromium binary, or None when it is not installed."""
    found = shutil.which("chromium")
    return found or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


def open_page(url: str, ready: str, evaluate: dict[str, str], *, width: int = 1280,
              height: int = 1100, timeout: float = 60.0) -> dict[str, Any]:
    """Load `url`, wait until the JS expression `ready` is true, evaluate each expression in
    `evaluate`, screenshot. Returns {"errors": [...], "values": {...}, "png": bytes}."""
    binary = chromium()
    assert binary, "Chromium is not installed"
    profile = tempfile.mkdtemp(prefix="planarpy-chromium-")
    proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}",
                             f"--window-size={width},{height}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        ws = _devtools_url(proc, time.monotonic() + timeout)
        return asyncio.run(_session(ws, url, ready, evaluate, width, height, timeout))
    finally:
        proc.kill()
        proc.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)


def _devtools_url(proc: subprocess.Popen, deadline: float) -> str:
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            raise AssertionError(f"Chromium exited with {proc.returncode}")
        if "DevTools listening on " in line:
            return line.split("DevTools listening on ", 1)[1].strip()
    raise AssertionError("Chromium did not start its DevTools endpoint in time")


async def _session(browser_ws: str, url: str, ready: str, evaluate: dict[str, str], width: int,
                   height: int, timeout: float) -> dict[str, Any]:
    base = "http://" + browser_ws.split("/")[2]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/json/list") as r:
            page = next(t for t in await r.json() if t["type"] == "page")
        async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            cdp = _Cdp(ws)
            for method in ("Runtime.enable", "Log.enable", "Page.enable"):
                await cdp.call(method)
            await cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                           deviceScaleFactor=1, mobile=False)
            await cdp.call("Page.navigate", url=url)
            await cdp.wait_event("Page.loadEventFired", timeout)
            deadline = time.monotonic() + timeout
            while not await cdp.eval(ready):
                assert time.monotonic() < deadline, f"the page never got ready: {ready}"
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # a last animation frame after the views report done
            values = {k: await cdp.eval(expr) for k, expr in evaluate.items()}
            shot = await cdp.call("Page.captureScreenshot", format="png")
            return {"errors": cdp.errors, "values": values, "png": base64.b64decode(shot["data"])}


class _Cdp:
    def __init__(self, ws: Any) -> None:
        self.ws, self.next_id, self.errors = ws, 0, []
        self.events: list[dict[str, Any]] = []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        mine = self.next_id
        await self.ws.send_str(json.dumps({"id": mine, "method": method, "params": params}))
        while True:
            msg = await self._read()
            if msg.get("id") == mine:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    async def wait_event(self, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == name for e in self.events):
            assert time.monotonic() < deadline, f"no {name} in time"
            await asyncio.wait_for(self._read(), timeout=max(deadline - time.monotonic(), 0.01))

    async def eval(self, expression: str) -> Any:
        out = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in out:
            return None
        return out["result"].get("value")

    async def _read(self) -> dict[str, Any]:
        msg = json.loads((await self.ws.receive()).data)
        if "method" in msg:
            self.events.append(msg)
            self._note(msg)
        return msg

    def _note(self, msg: dict[str, Any]) -> None:
        method, p = msg["method"], msg.get("params", {})
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            self.errors.append(" ".join(str(a.get("value", a.get("description")))
                                        for a in p.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            self.errors.append(d.get("exception", {}).get("description") or d.get("text"))
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            self.errors.append(p["entry"].get("text"))
