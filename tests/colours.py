"""Colour helpers for the tests: WCAG 2 contrast (the product's own, pressroom.contrast) and
theme tokens written as CSS computes them."""

from __future__ import annotations

from pressroom.contrast import contrast, hex_rgb, luminance

__all__ = ["contrast", "css_rgb", "hex_rgb", "luminance"]


def css_rgb(token: str) -> str:
    """A theme's hex colour as getComputedStyle reports it: 'rgb(47, 111, 106)'."""
    return "rgb({}, {}, {})".format(*hex_rgb(token))
