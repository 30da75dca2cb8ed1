"""Binance-style errors, API keys and HMAC-SHA256 request signing checks."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any, Mapping

import attrs

MAX_RECV_WINDOW = 60_000
DEFAULT_RECV_WINDOW = 5_000
_SIGNATURE = re.compile(r"(?:^|&)signature=([^&]*)$")


class BinanceError(Exception):
    """An error answer: `{"code": code, "msg": msg}` with an HTTP status."""

    def __init__(self, code: int, msg: str, status: int = 400,
                 data: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code} {msg}")
        self.code, self.msg, self.status, self.data = code, msg, status, data

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "msg": self.msg}
        if self.data is not None:  # what each part of a cancel-replace did
            body["data"] = self.data
        return body


def bad_param(name: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


@attrs.frozen(slots=True)
class Credentials:
    """An API key and its secret; the secret never appears in a repr."""

    api_key: str
    secret: str = attrs.field(repr=False)

    def sign(self, payload: str) -> str:
        return hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def split_signature(query: str, body: str) -> tuple[str, str | None]:
    """The signed payload (query string then body, as Binance defines it) and the signature."""
    for part in ("body", "query"):
        text = body if part == "body" else query
        m = _SIGNATURE.search(text)
        if m:
            stripped = text[:m.start()]
            return (query + stripped, m.group(1)) if part == "body" else (stripped + body, m.group(1))
    return query + body, None


def check_signature(creds: Credentials, payload: str, signature: str | None) -> None:
    if not signature:
        raise bad_param("signature")
    if not hmac.compare_digest(creds.sign(payload), signature.lower()):
        raise BinanceError(-1022, "Signature for this request is not valid.")


def check_timestamp(params: Mapping[str, str], server_now: int) -> None:
    """Binance's recvWindow rule: not older than recvWindow, not more than 1 s ahead."""
    ts = params.get("timestamp")
    if not ts or not ts.isdigit():
        raise bad_param("timestamp")
    window = params.get("recvWindow") or str(DEFAULT_RECV_WINDOW)
    if not window.isdigit():
        raise bad_param("recvWindow")
    if int(window) > MAX_RECV_WINDOW:
        raise BinanceError(-1131, "recvWindow must be less than 60000")
    t = int(ts)
    if t > server_now + 1000:
        raise BinanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    if server_now - t > int(window):
        raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")


def lookup_key(keys: Mapping[str, Credentials], api_key: str | None) -> Credentials:
    if not api_key:
        raise BinanceError(-2014, "API-key format invalid.", 401)
    creds = keys.get(api_key)
    if creds is None:
        raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
    return creds
