"""Signing and checking webhook deliveries (docs/webhooks.md).

Every delivery carries ``Tether-Signature: t=<unix seconds>,v1=<hex>``, where ``<hex>`` is
the HMAC-SHA256, keyed with the webhook's secret, of ``<t>.<body>`` (the raw request
body, bytes as sent). Signing the time with the body lets a receiver refuse replays of
an old delivery: ``verify_signature`` does so past ``tolerance`` seconds. This module
needs only the standard library, so a receiver can vendor it.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Tether-Signature"
EVENT_HEADER = "Tether-Event"  # run.awaiting_approval, run.completed, ...
DELIVERY_HEADER = "Tether-Delivery"  # the delivery's id: the same on every retry
DEFAULT_TOLERANCE = 300.0  # seconds


class SignatureError(ValueError):
    """A webhook delivery whose signature is missing, malformed, wrong or too old."""


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``Tether-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(
    secret: str,
    header: str | None,
    body: bytes,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> int:
    """Check a delivery's signature; returns its timestamp, or raises SignatureError.
    Compares in constant time and accepts any of several ``v1=`` values (a header may
    carry more than one while a secret is being replaced)."""
    if not header:
        raise SignatureError(f"no {SIGNATURE_HEADER} header")
    parts = [item.partition("=") for item in header.split(",")]
    stamps = [value for key, _, value in parts if key.strip() == "t"]
    macs = [value.strip() for key, _, value in parts if key.strip() == "v1"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit() or not macs:
        raise SignatureError(f"malformed {SIGNATURE_HEADER} header")
    timestamp = int(stamps[0])
    expected = sign(secret, body, timestamp).rpartition("v1=")[2]
    if not any(hmac.compare_digest(expected, mac) for mac in macs):
        raise SignatureError("signature does not match the body")
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        raise SignatureError("signature is too old (or from the future)")
    return timestamp
