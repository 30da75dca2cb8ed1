"""Alerts: what a person watching a paper or live run must hear about, at once.

Risk trips, reconciliation differences, halts, long disconnects, trace write failures,
shadow divergence and conditional orders that may have fired late (their trigger was
reached while the stream was down) each become one alert: a WARNING log line, an `alert` event in the
trace, and (when `[alerts] webhooks` lists URLs) an HTTP POST of a JSON body to each URL,
for a chat bot or a pager.

The POSTs are sent by a thread of their own from a bounded queue: `Alerts.send` only
puts the body on the queue, so a receiver that is down or slow never delays a tick. A
failed POST is retried (`retries` times, with a growing pause) within `timeout` seconds
each; when the queue is full the oldest unsent alert gives way (and the log says so).
The body holds the alert's kind, message, details, the strategy, mode and exchange and
the time: never a key, a secret or a signed URL (every text in it goes through
`redact`). A webhook URL may hold a token in its path, so the log names only its host.

Written with the standard library's `urllib`: one blocking POST on a worker thread needs
no event loop, and an aiohttp session would tie the sender to the engine's loop, which
is what must never wait.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

import attrs

from ... import validate as V
from ...exchanges.redact import redact

log = logging.getLogger(__name__)

QUEUE = 1000  # alerts waiting to be posted at most

KINDS = ("risk", "reconciliation", "halt", "disconnect", "trace", "shadow", "trigger")


def _urls(v: Any) -> bool:
    rule = V.url()
    return isinstance(v, (list, tuple)) and all(isinstance(u, str) and rule.test(u) for u in v)


WEBHOOKS_RULE = V.Rule("a list of http(s) URLs", _urls, cast=tuple)
KEYS = {"webhooks": WEBHOOKS_RULE, "timeout": V.positive("seconds", below=60.0),
        "retries": V.whole(0, 10), "disconnect_after": V.positive("seconds")}


@attrs.frozen(slots=True)
class AlertConfig:
    """`[alerts]` of planar.toml: where alerts are posted and how hard it tries."""

    webhooks: tuple[str, ...] = ()
    timeout: float = 2.0  # seconds one POST may take
    retries: int = 2  # further tries of a failed POST
    disconnect_after: float = 60.0  # seconds a stream is down before it is an alert

    @classmethod
    def from_config(cls, table: Any) -> "AlertConfig":
        """The checked `[alerts]` table (None: no webhooks, the defaults)."""
        return cls(**V.read_table(table, KEYS, "[alerts]"))


class Alerts:
    """A run's alerts: logged, recorded (via `record`), and posted to the webhooks."""

    def __init__(self, config: AlertConfig, source: Mapping[str, Any],
                 record: Callable[[str, dict[str, Any]], Any] | None = None,
                 secrets: tuple[str, ...] = ()) -> None:
        self.config = config
        self.source = dict(source)  # strategy, mode, exchange
        self.record = record
        self.secrets = tuple(x for x in secrets if x)
        self.sent = 0  # POSTs that a receiver accepted
        self.failed = 0  # alerts given up on (after the retries, or dropped)
        self.raised = 0
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(QUEUE)
        self._thread: threading.Thread | None = None

    def send(self, kind: str, message: str, details: Mapping[str, Any] | None = None,
             ts: int | None = None) -> dict[str, Any]:
        """Raise one alert (from any thread; it never blocks): log, record, post."""
        body = {"kind": kind, "message": self._clean(message),
                "details": json.loads(self._clean(json.dumps(dict(details or {}), default=str))),
                **self.source, "time": int(time.time() * 1000) if ts is None else ts}
        self.raised += 1
        log.warning("%s alert (%s): %s", self.source.get("strategy", ""), kind, body["message"])
        if self.record is not None:
            self.record("alert", body)
        if self.config.webhooks:
            self._post_later(body)
        return body

    def _clean(self, text: str) -> str:
        return redact(text, self.secrets)

    def _post_later(self, body: dict[str, Any]) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._worker, name="planarpy-alerts",
                                            daemon=True)
            self._thread.start()
        while True:
            try:
                self._queue.put_nowait(body)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()  # the oldest gives way
                    self.failed += 1
                    log.warning("alerts: the webhook queue is full; the oldest alert is dropped")
                except queue.Empty:
                    pass

    def _worker(self) -> None:
        while (body := self._queue.get()) is not None:
            for url in self.config.webhooks:
                self._post(url, body)
            self._queue.task_done()
        self._queue.task_done()

    def _post(self, url: str, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        pause = 0.1
        for attempt in range(self.config.retries + 1):
            try:
                request = urllib.request.Request(url, data, method="POST",
                                                 headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=self.config.timeout) as r:
                    if 200 <= r.status < 300:
                        self.sent += 1
                        return
            except (OSError, ValueError, urllib.error.URLError) as e:
                why = type(e).__name__
            else:
                why = "not a 2xx answer"
            if attempt < self.config.retries:
                time.sleep(pause)
                pause *= 2
        self.failed += 1
        log.warning("alerts: the webhook at %s did not take the %s alert (%s)",
                    urlsplit(url).hostname, body["kind"], why)

    def close(self, timeout: float = 2.0) -> None:
        """Let the queued alerts go out, for up to `timeout` seconds, then stop the sender."""
        if self._thread is None:
            return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            pass  # a daemon thread: it ends with the process
        self._thread.join(timeout)
        self._thread = None
