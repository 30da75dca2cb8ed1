"""Payload encoding and credential scrubbing."""

import msgspec
import numpy as np
import pytest
from hypothesis import given, strategies as st

from planarpy.trace.payload import (decode_payload, encode_payload, is_secret_key,
                                    redaction_patterns, scrub, scrub_encoded)


@pytest.mark.parametrize("key", ["apiKey", "api_key", "X-MBX-APIKEY", "secret", "clientSecret",
                                 "signature", "password", "privateKey", "private_key",
                                 "passphrase", "listenKey", "Authorization"])
def test_secret_key_names_are_recognised(key):
    """Credential-like key names match in any case and punctuation."""
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["id", "symbol", "price", "keys", "status", "signed", 3])
def test_ordinary_keys_are_not_secret(key):
    """Ordinary payload keys are kept."""
    assert not is_secret_key(key)


def test_scrub_masks_nested_values_and_query_strings():
    """Secret keys are masked at any depth, and key=value pairs in strings too."""
    payload = {"headers": {"X-MBX-APIKEY": "K"}, "orders": [{"id": 1, "signature": "S"}],
               "url": "/api/v3/order?symbol=ETHBTC&timestamp=1&signature=abc123",
               "params": ({"password": "p"},)}
    out = scrub(payload)
    assert out["headers"] == {"X-MBX-APIKEY": "***"}
    assert out["orders"] == [{"id": 1, "signature": "***"}]
    assert out["url"] == "/api/v3/order?symbol=ETHBTC&timestamp=1&signature=***"
    assert out["params"] == [{"password": "***"}]
    assert payload["headers"]["X-MBX-APIKEY"] == "K"  # the caller's dict is untouched


def test_scrub_encoded_redacts_configured_values_anywhere():
    """A configured secret value is masked even under an innocent key."""
    patterns = redaction_patterns(["S3CR3T-VALUE", "ab"])  # too short values are ignored
    data = scrub_encoded(encode_payload({"note": "key S3CR3T-VALUE here", "ab": "ab"}), patterns)
    assert decode_payload(data) == {"note": "key *** here", "ab": "ab"}


def test_clean_payload_is_unchanged():
    """A payload without suspicious words is stored exactly as encoded."""
    raw = encode_payload({"id": "1", "price": 0.5})
    assert scrub_encoded(raw) is raw


def test_encode_rejects_non_dicts_and_odd_values():
    """Payloads are dicts of JSON values; numpy scalars and arrays are converted."""
    assert decode_payload(encode_payload({"x": np.float64(1.5), "a": np.arange(2)})) == {
        "x": 1.5, "a": [0, 1]}
    assert encode_payload(None) == b"{}"
    with pytest.raises(TypeError, match="must be a dict"):
        encode_payload([1, 2])
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        encode_payload({"x": object()})


def test_decode_rejects_damaged_bytes():
    """Zeros or a non-object are reported as ValueError."""
    with pytest.raises(ValueError, match="not valid JSON"):
        decode_payload(b"\0\0\0\0")
    with pytest.raises(ValueError, match="not a JSON object"):
        decode_payload(b"[1]")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)


@given(st.dictionaries(st.text(max_size=12), json_values, max_size=6))
def test_payload_round_trip_without_secrets(payload):
    """Any JSON dict comes back equal to its scrubbed form."""
    stored = decode_payload(scrub_encoded(encode_payload(payload)))
    assert stored == msgspec.json.decode(msgspec.json.encode(scrub(payload)))


def test_a_lone_surrogate_is_recorded_visibly_not_refused(tmp_path):
    """JSON text decoded by json.loads may hold a lone surrogate ("\\udcff" from a malformed
    exchange message), which UTF-8 cannot encode: record raised UnicodeEncodeError, so
    Strategy.emit, which records before it applies, dropped the event from the state
    too. Now the surrogate is stored as its escape text and the event is recorded."""
    from planarpy.trace import EventTrace, iter_events
    with EventTrace.open(tmp_path / "t", strategy="S", exchange="x") as trace:
        trace.record("exchange_error", {"error": "bad \udcff byte", "k\udc80": [1, "\ud800"]})
        trace.record("exchange_error", {"error": "after"})
    got = [e["payload"] for e in iter_events(tmp_path / "t", errors="raise")]
    assert got == [{"error": "bad \\udcff byte", "k\\udc80": [1, "\\ud800"]}, {"error": "after"}]
