"""Credentials are masked in text and in every log record, whichever logger made it and
whenever its handler was added."""

from __future__ import annotations

import io
import logging

import pytest

from planarpy.exchanges import redact as R

SIG = "a3f1" * 16  # an HMAC-SHA256 in hex


@pytest.mark.parametrize("text,kept,gone", [
    (f"GET http://h/api/v3/account?timestamp=1&signature={SIG}", "timestamp=1&signature=***", SIG),
    (f"POST /order timestamp=1&signature={SIG[:40]}&x=1", "signature=***&x=1", SIG[:40]),
    ("{'X-MBX-APIKEY': 'abcdef123456', 'User-Agent': 'ccxt'}", "'X-MBX-APIKEY': '***'",
     "abcdef123456"),
    ('{"listenKey":"pqrsXYZ0123456789abcdefghij"}', '{"listenKey":"***"}', "pqrsXYZ0123456789"),
    ("url='ws://127.0.0.1:1/fstream/ws/pqrsXYZ0123456789abcdefghij'", "/fstream/ws/***'",
     "pqrsXYZ0123456789"),
    ("wss://x/private/ws?listenKey=pqrsXYZ0123456789abc", "listenKey=***", "pqrsXYZ"),
    ('{"apiKey": "k-123456", "signature": "zz"}', '"apiKey": "***"', "k-123456"),
    ("headers {'OK-ACCESS-SIGN': 'c2lnbmF0dXJl', 'OK-ACCESS-PASSPHRASE': 'pw-9'}",
     "'OK-ACCESS-SIGN': '***'", "c2lnbmF0dXJl"),
    ("headers {'OK-ACCESS-PASSPHRASE': 'pw-9', 'symbol': 'BTC'}", "'symbol': 'BTC'", "pw-9"),
    ("clientOrderId=pp123&symbol=XRPETH&timestamp=1", "clientOrderId=pp123&symbol=XRPETH", "***"),
    (f"digest {SIG} end", "digest *** end", SIG),
])
def test_redact_masks_signatures_keys_and_listen_keys(text, kept, gone):
    out = R.redact(text)
    assert kept in out and gone not in out


def test_remembered_values_are_masked_anywhere_and_short_ones_are_not():
    R.remember("my-very-own-key", "tiny")
    assert R.redact("k=my-very-own-key; tiny stays") == "k=***; tiny stays"
    assert R.redact("sig", extra=["sig"]) == "***"


def test_every_log_record_is_clean_whatever_logger_and_whenever_the_handler_came():
    """A child logger (ccxt's), another library's logger, a message with arguments, a
    traceback, and a handler added after install(): all masked."""
    R.install()
    R.install()  # idempotent
    R.remember("lx-secret-value-1")
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        logging.getLogger("ccxt.base.exchange").debug("GET %s, Request: %s",
                                                      f"/a?signature={SIG}",
                                                      {"X-MBX-APIKEY": "lx-secret-value-1"})
        logging.getLogger("aiohttp.client").warning("failed url='http://h/ws/%s'", "L" * 40)
        try:
            raise ValueError(f"boom signature={SIG}")
        except ValueError:
            logging.getLogger("some.lib").exception("it failed")
        logging.getLogger("x").info("a %s %d", "b")  # a record that cannot format
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    text = out.getvalue()
    assert SIG not in text and "lx-secret-value-1" not in text and "L" * 40 not in text
    assert "signature=***" in text and "/ws/***" in text and "ValueError: boom" in text
    assert "'a %s %d'" in text
