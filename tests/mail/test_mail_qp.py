"""Quoted-printable bodies: no encoded line over RFC 2045's 76 characters, decoded text exact."""

from __future__ import annotations

import binascii

from hypothesis import example, given, settings
from hypothesis import strategies as st

from pressroom.mail.message import PreparedBody
from pressroom.mergefields import MARKERS

CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\r{")
# Exact boundary lengths: a static chunk or value ending at, just before or just after 76.
BOUNDARY = st.builds(lambda n, c: c * n, st.integers(70, 80), st.sampled_from("x =é\t."))
CHUNK = st.one_of(st.text(CHARS, max_size=200), BOUNDARY,
                  st.builds(lambda a, b: a + "\n" + b, BOUNDARY, BOUNDARY))


def fill(parts: list[str], markers: list[str], values: dict[str, str]) -> str:
    out = parts[0]
    for marker, part in zip(markers, parts[1:]):
        out += values[marker] + part
    return out


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(CHUNK, min_size=1, max_size=5), data=st.data(),
       values=st.fixed_dictionaries({m: st.one_of(st.text(CHARS, max_size=120), BOUNDARY)
                                     for m in MARKERS}))
@example(parts=["x" * 76, ""], data=None, values={m: "y" * 76 for m in MARKERS})
@example(parts=["\n", ""], data=None, values={m: "" for m in MARKERS})
def test_no_encoded_line_exceeds_76_and_decoding_is_exact(parts, data, values):
    markers = ([data.draw(st.sampled_from(MARKERS)) for _ in parts[1:]] if data
               else [MARKERS[0]] * (len(parts) - 1))
    template = fill(parts, markers, {m: m for m in MARKERS})
    encoded = PreparedBody(template).encode(values)
    assert max(len(line) for line in encoded.split(b"\r\n")) <= 76
    decoded = binascii.a2b_qp(encoded).decode("utf-8").replace("\r\n", "\n")
    expected = fill(parts, markers, values)
    # The template's final line break belongs to the MIME boundary that follows it; a line
    # break that a merge value or an earlier part brings to the end is content.
    if parts[-1].endswith("\n"):
        expected = expected[:-1]
    assert decoded == expected
