"""No credential reaches the disk, whatever shape the payload has."""

import secrets

import zarr

from planarpy.trace import EventTrace, iter_events


def all_bytes(path):
    """Every byte of the store as a reader could see it: raw files, decoded arrays, metadata."""
    chunks = [p.read_bytes() for p in path.rglob("*") if p.is_file()]
    root = zarr.open_group(str(path), mode="r")
    for _, seg in root.groups():
        for _, array in seg.arrays():
            chunks.append(array[:].tobytes())
    return b"\n".join(chunks)


def test_no_api_key_or_secret_on_disk(tmp_path):
    """Keys named like credentials and configured secret values are masked everywhere."""
    api_key, secret = secrets.token_hex(16), secrets.token_hex(24)
    marker = secrets.token_hex(8)  # an ordinary value: proves the scan sees payload bytes
    with EventTrace.open(tmp_path / "t", strategy="S", exchange="binance",
                         redact=[api_key, secret]) as trace:
        trace.record("request_sent", {
            "method": "POST", "marker": marker,
            "url": f"https://api.binance.com/api/v3/order?symbol=ETHBTC&signature={secret[:12]}",
            "headers": {"X-MBX-APIKEY": api_key, "Content-Type": "x"},
            "config": {"apiKey": api_key, "secret": secret, "password": secret,
                       "privateKey": secret, "nested": [{"api_key": api_key}]},
            "note": f"key {api_key} and secret {secret} pasted into a message",
        })
        trace.record("response_received", {"echo": {"signature": secret[:12]}, "raw": secret})
    data = all_bytes(trace.path)
    assert marker.encode() in data
    for value in (api_key, secret, secret[:12]):
        assert value.encode() not in data
    payload = next(iter_events(trace.path))["payload"]
    assert payload["headers"] == {"X-MBX-APIKEY": "***", "Content-Type": "x"}
    assert payload["config"]["nested"] == [{"api_key": "***"}]
    assert payload["url"].endswith("signature=***")
    assert payload["note"] == "key *** and secret *** pasted into a message"


def test_no_secret_in_a_journal(tmp_path, monkeypatch):
    """Events saved to a journal at close are scrubbed like the trace's own."""
    from planarpy.trace import store

    api_key, secret = secrets.token_hex(16), secrets.token_hex(24)
    trace = EventTrace.open(tmp_path / "t", strategy="S", exchange="binance",
                            redact=[api_key, secret], flush_interval=60)

    def unwritable(self, *args):
        raise OSError(30, "Read-only file system")
    monkeypatch.setattr(store.TraceStore, "append", unwritable)
    trace.record("request_sent", {"headers": {"X-MBX-APIKEY": api_key}, "note": f"s={secret}"})
    trace.close()
    text = trace.health().journal.read_bytes()
    assert b"X-MBX-APIKEY" in text and api_key.encode() not in text and secret.encode() not in text


def test_no_secret_in_the_repr_of_a_trace(tmp_path):
    """The repr of an EventTrace (in a traceback with locals, a debugger, a log line) showed
    the configured API key and secret, and every buffered payload before its scrubbing."""
    api_key, secret = secrets.token_hex(16), secrets.token_hex(24)
    with EventTrace.open(tmp_path / "t", strategy="S", exchange="binance",
                         redact=[api_key, secret], flush_interval=60) as trace:
        trace.record("request_sent", {"url": f"/api/v3/order?signature={secret}"})
        text = repr(trace)
    assert api_key not in text and secret not in text
    assert text == f"EventTrace('{trace.path}', strategy='S', exchange='binance', pending=1)"
