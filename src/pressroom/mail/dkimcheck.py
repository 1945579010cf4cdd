"""The DKIM and DMARC checks of ``pressroom doctor``: the published records against our settings."""

from __future__ import annotations

import base64
import re

import dkim
from dkim.crypto import UnparsableKeyError, parse_pem_private_key, parse_public_key

from pressroom.errors import MailError
from pressroom.mail.dns import Lookup
from pressroom.mail.report import FAIL, PASS, WARN, Check
from pressroom.mail.settings import DkimSettings

_RSA_OID = bytes.fromhex("2a864886f70d010101")
_TAG = re.compile(r"^\s*([a-zA-Z][a-zA-Z0-9_]*)\s*=\s*(.*?)\s*$", re.S)


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def _der_int(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def public_record(private_pem: bytes) -> str:
    """The DKIM TXT record that publishes the public half of an RSA private key (PEM)."""
    key = parse_pem_private_key(private_pem)
    rsa = _der(0x30, _der_int(key["modulus"]) + _der_int(key["publicExponent"]))
    spki = _der(0x30, _der(0x30, _der(0x06, _RSA_OID) + b"\x05\x00") + _der(0x03, b"\x00" + rsa))
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode("ascii")


def tags(record: str) -> dict[str, str]:
    """``"v=DKIM1; k=rsa; p=..."`` -> {"v": "DKIM1", ...} (tag names lower-cased)."""
    out = {}
    for part in record.split(";"):
        if part.strip():
            m = _TAG.match(part)
            if not m:
                raise ValueError(f"{part.strip()!r} is not a tag=value pair")
            out[m.group(1).lower()] = m.group(2)
    return out


def dkim_check(lookup: Lookup, settings: DkimSettings | None, sender: str) -> Check:
    """The selector's record exists, holds our public key, and verifies a freshly signed message."""
    if settings is None:
        return Check("DKIM", FAIL, "no DKIM signing is configured (smtp.dkim); Gmail, Yahoo and "
                     "Microsoft require DKIM from bulk senders",
                     fix="add smtp.dkim (domain, selector, key_file) to publication.yaml and "
                         "publish the public key as SELECTOR._domainkey.DOMAIN TXT")
    name = f"{settings.selector}._domainkey.{settings.domain}"
    try:
        wanted = public_record(settings.key)
    except (UnparsableKeyError, ValueError, KeyError) as exc:
        return Check("DKIM", FAIL, f"{settings.key_file} is not an RSA private key dkimpy can "
                     f"read ({exc})", fix="generate one with: openssl genrsa -out dkim.pem 2048")
    found = lookup.txt(name)
    fix = f"publish this TXT record at {name}: {wanted}"
    if not found:
        return Check("DKIM", FAIL, f"no TXT record at {name}", fix=fix)
    if len(found) > 1:
        return Check("DKIM", FAIL, f"{len(found)} TXT records at {name}; a receiver uses one at "
                     "random", tuple(found), fix="keep only one: " + wanted)
    record = found[0]
    try:
        published = tags(record)
        key = parse_public_key(base64.b64decode(published.get("p", "").replace(" ", "")))
    except (ValueError, UnparsableKeyError) as exc:
        return Check("DKIM", FAIL, f"the record at {name} does not parse ({exc})", (record,), fix)
    ours = parse_pem_private_key(settings.key)
    if (key["modulus"], key["publicExponent"]) != (ours["modulus"], ours["publicExponent"]):
        return Check("DKIM", FAIL, f"the public key at {name} does not match "
                     f"{settings.key_file}", (record,), fix)
    return _sign_and_verify(lookup, settings, sender, name, record)


def _sign_and_verify(lookup: Lookup, settings: DkimSettings, sender: str, name: str,
                     record: str) -> Check:
    from pressroom.mail.message import sign  # the same signer the campaign uses

    probe = (f"From: {sender}\r\nTo: {sender}\r\nSubject: pressroom doctor DKIM probe\r\n\r\n"
             "probe\r\n").encode()
    try:
        signed = sign(probe, settings)
    except MailError as exc:
        return Check("DKIM", FAIL, exc.message, (record,))
    if not dkim.verify(signed, dnsfunc=lookup.dkim_txt):
        return Check("DKIM", FAIL, f"a message signed with {settings.key_file} does not verify "
                     f"against {name}", (record,), "check the key type (k=rsa) and the record")
    return Check("DKIM", PASS, f"{name} holds the public key of {settings.key_file}; a signed "
                 "test message verifies", (record,))


def aligned(domain: str, from_domain: str, mode: str) -> bool:
    """DMARC identifier alignment: strict needs the same name; relaxed allows a parent/child.

    Relaxed alignment compares organizational domains (RFC 7489 3.1); without the Public
    Suffix List we accept exactly one being the other or a subdomain of it.
    """
    a, b = domain.lower().rstrip("."), from_domain.lower().rstrip(".")
    if mode == "s":
        return a == b
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def _dmarc_record(lookup: Lookup, from_domain: str) -> tuple[str, list[str]]:
    """The _dmarc name that holds records: the From domain, else a parent (RFC 7489 6.6.3)."""
    labels = from_domain.split(".")
    for i in range(len(labels) - 1):
        name = "_dmarc." + ".".join(labels[i:])
        found = [r for r in lookup.txt(name) if r.lower().replace(" ", "").startswith("v=dmarc1")]
        if found:
            return name, found
    return "_dmarc." + from_domain, []


def dmarc_check(lookup: Lookup, from_domain: str, dkim_settings: DkimSettings | None) -> Check:
    """_dmarc exists, parses, has a policy, and our DKIM d= aligns with From as it declares."""
    name, found = _dmarc_record(lookup, from_domain)
    example = f"v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@{from_domain}"
    if not found:
        return Check("DMARC", FAIL, f"no DMARC record at {name}",
                     fix=f"publish a TXT record at _dmarc.{from_domain}, e.g. {example}")
    if len(found) > 1:
        return Check("DMARC", FAIL, f"{len(found)} DMARC records at {name}; receivers then "
                     "ignore DMARC", tuple(found), fix="keep only one")
    record = found[0]
    try:
        policy = tags(record)
    except ValueError as exc:
        return Check("DMARC", FAIL, f"the record at {name} does not parse: {exc}", (record,),
                     fix=f"e.g. {example}")
    p, adkim = policy.get("p", "").lower(), policy.get("adkim", "r").lower()
    aspf = policy.get("aspf", "r").lower()
    if p not in ("none", "quarantine", "reject") or not {adkim, aspf} <= {"r", "s"}:
        return Check("DMARC", FAIL, f"the record at {name} needs p=none|quarantine|reject (and "
                     "adkim, aspf r or s when given)", (record,), fix=f"e.g. {example}")
    mode = "strict" if adkim == "s" else "relaxed"
    if dkim_settings is None or not aligned(dkim_settings.domain, from_domain, adkim):
        d = dkim_settings.domain if dkim_settings else "(no DKIM)"
        return Check("DMARC", FAIL, f"DKIM d={d} is not aligned with From {from_domain} under "
                     f"{mode} alignment (adkim={adkim})", (record,),
                     fix=f"sign with smtp.dkim.domain: {from_domain}"
                         + (" or relax the record to adkim=r" if adkim == "s" else ""))
    if p == "none":
        return Check("DMARC", WARN, f"{name} is aligned ({mode}) but p=none asks receivers to do "
                     "nothing with failing mail", (record,),
                     fix="once reports show your mail passes, move to p=quarantine")
    return Check("DMARC", PASS, f"{name}: p={p}, DKIM d={dkim_settings.domain} aligned with "
                 f"From ({mode})", (record,))
