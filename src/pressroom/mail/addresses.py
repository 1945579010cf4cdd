"""Email address and header-value checks shared by the store, importer and message builder."""

from __future__ import annotations

import re
from typing import overload

from pressroom.errors import MailError

# RFC 5322 "atext" for an unquoted local part; quoted local parts are deliberately unsupported.
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# C0 controls (tab included), DEL and the C1 controls: never part of a name, tag or address.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _invalid(value: str, reason: str) -> MailError:
    return MailError(f"{value!r} is not a valid email address: {reason}")


def normalise_address(value: str) -> str:
    """Trim and check one address; return it with the domain lower-cased (IDNA for non-ASCII).

    Raises MailError naming the address and what is wrong with it.
    """
    if not isinstance(value, str):
        raise MailError(f"{value!r} is not an email address")
    addr = value.strip()
    if not addr:
        raise MailError("the email address is empty")
    if " " in addr or _CONTROL.search(addr):
        raise _invalid(addr, "it contains a space, line break or control character")
    if addr.count("@") != 1:
        raise _invalid(addr, "it must contain exactly one '@'")
    local, domain = addr.split("@")
    if not local.isascii():
        raise _invalid(addr, "non-ASCII characters before the '@' are not supported")
    if len(local) > 64 or not _LOCAL.match(local):
        raise _invalid(addr, "the part before the '@' has characters or dots in invalid places")
    try:
        domain = domain.lower().encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise _invalid(addr, "the domain is not a valid domain name") from exc
    labels = domain.split(".")
    if (len(labels) < 2 or len(domain) > 253 or labels[-1].isdigit()
            or not all(_LABEL.match(label) for label in labels)):
        raise _invalid(addr, "the part after the '@' must be a domain like example.com")
    return f"{local}@{domain}"


def address_key(addr: str) -> str:
    """The comparison key: addresses are the same subscriber whatever their letter case."""
    return addr.strip().lower()


def domain_of(addr: str) -> str:
    """The domain of an address (lower-case)."""
    return addr.rsplit("@", 1)[-1].lower()


def signup_key(addr: str) -> str:
    """The key the sign-up rate limit counts by: case-folded, without a ``+tag``.

    ``Ann+1@Example.com`` and ``ann+2@example.com`` reach the same inbox, so they share one
    budget of confirmation emails.
    Example: ``signup_key("Ann+x@Example.com") == "ann@example.com"``.
    """
    local, _, domain = addr.strip().casefold().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def has_control(value: str) -> bool:
    """True when ``value`` holds a C0 or C1 control character or DEL (tab and line breaks too)."""
    return bool(_CONTROL.search(value))


@overload
def check_header(name: str, value: str) -> str: ...
@overload
def check_header(name: str, value: str | None) -> str | None: ...


def check_header(name: str, value: str | None) -> str | None:
    """Refuse a header value containing CR or LF (header injection); return it unchanged."""
    if value is not None and ("\r" in value or "\n" in value):
        raise MailError(f"the {name} contains a line break (CR or LF), which could inject email "
                        f"headers: {value!r}; remove the line break")
    return value


def check_text(name: str, value: str) -> str:
    """Refuse a name or tag holding any control character (C0, C1 or DEL); return it unchanged."""
    check_header(name, value)
    if has_control(value):
        raise MailError(f"the {name} contains a control character: {value!r}; remove it")
    return value
