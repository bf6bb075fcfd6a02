"""Payment providers behind one interface, and the built-in sandbox.

The sandbox behaves like a provider's test mode: the card number decides the outcome.

=====================  ==============================================
card number            outcome
=====================  ==============================================
4242 4242 4242 4242    approved (Visa)
5555 5555 5555 4444    approved (Mastercard)
6200 0000 0000 0005    approved (UnionPay)
4000 0000 0000 0002    declined: ``card_declined``
4000 0000 0000 9995    declined: ``insufficient_funds``
4000 0000 0000 0341    authorised, then the capture fails: ``capture_failed``
any other Luhn-valid   approved
=====================  ==============================================

``{"type": "cash"}`` is money taken at a store counter (POS): always approved.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ProviderResult:
    ok: bool
    ref: str | None = None
    code: str | None = None
    message: str | None = None


class PaymentProvider(Protocol):
    name: str

    def authorize(self, amount_minor: int, currency: str, method: dict) -> ProviderResult: ...

    def capture(self, ref: str, amount_minor: int) -> ProviderResult: ...

    def refund(self, ref: str, amount_minor: int) -> ProviderResult: ...

    def void(self, ref: str) -> ProviderResult: ...


DECLINES = {
    "4000000000000002": ("card_declined", "The card was declined."),
    "4000000000009995": ("insufficient_funds", "The card has insufficient funds."),
}
FAILS_ON_CAPTURE = {"4000000000000341"}
CAPTURE_FAILS_PREFIX = "fc_"
BRANDS = {"4": "visa", "5": "mastercard", "62": "unionpay", "3": "amex"}


def luhn_ok(number: str) -> bool:
    digits = [int(d) for d in number]
    checksum = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        checksum += d
    return checksum % 10 == 0


def card_brand(number: str) -> str:
    for prefix in ("62", "4", "5", "3"):
        if number.startswith(prefix):
            return BRANDS[prefix]
    return "unknown"


class SandboxProvider:
    """Deterministic test mode: no network, outcomes chosen by the test card number."""

    name = "sandbox"

    def _ref(self, *parts: object) -> str:
        return "sbx_" + hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:20]

    def authorize(self, amount_minor: int, currency: str, method: dict) -> ProviderResult:
        if method.get("type") == "cash":
            return ProviderResult(True, self._ref("cash", amount_minor, currency, id(method)))
        number = method.get("number", "")
        if number in DECLINES:
            code, message = DECLINES[number]
            return ProviderResult(False, code=code, message=message)
        ref = self._ref("auth", number[-4:], amount_minor, currency, id(method))
        if number in FAILS_ON_CAPTURE:
            ref = CAPTURE_FAILS_PREFIX + ref  # remembered by the provider, as a real one would
        return ProviderResult(True, ref)

    def capture(self, ref: str, amount_minor: int) -> ProviderResult:
        if ref.startswith(CAPTURE_FAILS_PREFIX):
            return ProviderResult(False, ref, "capture_failed",
                                  "The issuer refused the capture after authorising it.")
        return ProviderResult(True, ref)

    def refund(self, ref: str, amount_minor: int) -> ProviderResult:
        return ProviderResult(True, self._ref("refund", ref, amount_minor))

    def void(self, ref: str) -> ProviderResult:
        return ProviderResult(True, ref)


PROVIDERS: dict[str, PaymentProvider] = {"sandbox": SandboxProvider()}


def get_provider(name: str) -> PaymentProvider:
    return PROVIDERS[name]
