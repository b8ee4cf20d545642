"""Money is an integer in minor units plus a currency code; converted only at provider edges."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# ISO 4217 exponents that differ from 2, plus Telegram Stars (whole stars).
_EXPONENTS: dict[str, int] = {
    "XTR": 0,
    "JPY": 0,
    "KRW": 0,
    "VND": 0,
    "CLP": 0,
    "ISK": 0,
    "IDR": 0,
    "BHD": 3,
    "KWD": 3,
    "OMR": 3,
    "JOD": 3,
    "TND": 3,
}


class MoneyError(ValueError):
    pass


def exponent(currency: str) -> int:
    code = currency.upper()
    if len(code) != 3 or not code.isalpha():
        raise MoneyError(f"invalid currency code {currency!r}")
    return _EXPONENTS.get(code, 2)


@dataclass(frozen=True, slots=True)
class Money:
    minor: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.minor, int) or isinstance(self.minor, bool):
            raise MoneyError("amount must be an integer number of minor units")
        if self.minor < 0:
            raise MoneyError("amount must not be negative")
        object.__setattr__(self, "currency", self.currency.upper())
        exponent(self.currency)

    def to_major(self) -> Decimal:
        return Decimal(self.minor).scaleb(-exponent(self.currency))

    @classmethod
    def from_major(cls, amount: Decimal | str | int | float, currency: str) -> Money:
        """Exact conversion; an amount with more decimals than the currency allows is refused."""
        try:
            value = Decimal(str(amount))
        except InvalidOperation as exc:
            raise MoneyError(f"invalid amount {amount!r}") from exc
        if not value.is_finite():
            raise MoneyError(f"invalid amount {amount!r}")
        scaled = value.scaleb(exponent(currency))
        if scaled != scaled.to_integral_value():
            raise MoneyError(f"{amount} has more decimals than {currency.upper()} allows")
        return cls(int(scaled.to_integral_value(rounding=ROUND_HALF_UP)), currency)

    def format(self) -> str:
        if self.currency == "XTR":
            return f"{self.minor} ⭐"
        return f"{self.to_major():.{exponent(self.currency)}f} {self.currency}"
