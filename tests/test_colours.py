"""The contrast formula the browser tests judge text with (needs no browser)."""

from __future__ import annotations

from colours import contrast, css_rgb, hex_rgb


def test_contrast_formula():
    assert round(contrast((0, 0, 0), (255, 255, 255)), 1) == 21.0
    assert round(contrast((255, 255, 255), (0, 0, 0)), 1) == 21.0  # order does not matter
    assert round(contrast((0x2F, 0x6F, 0x6A), (255, 255, 255)), 2) == 5.83
    assert contrast((119, 119, 119), (255, 255, 255)) < 4.5 < contrast((118, 118, 118),
                                                                        (255, 255, 255))


def test_theme_colours_as_css_computes_them():
    assert hex_rgb("#2F6F6A") == (47, 111, 106)
    assert css_rgb("#141a19") == "rgb(20, 26, 25)"
