"""WCAG 2 colour contrast: relative luminance and contrast ratio of sRGB colours."""

from __future__ import annotations

# WCAG 2.2 success criterion 1.4.3 (Level AA): body-size text against its background.
AA_TEXT = 4.5


def hex_rgb(token: str) -> tuple[int, int, int]:
    """'#2F6F6A' (or '#2f6') -> (47, 111, 106)."""
    value = token.lstrip("#")
    if len(value) == 3:
        value = "".join(ch * 2 for ch in value)
    r, g, b = (int(value[i:i + 2], 16) for i in (0, 2, 4))
    return r, g, b


def luminance(rgb) -> float:
    """WCAG 2 relative luminance of an sRGB colour given as 0-255 channels."""
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg, bg) -> float:
    """WCAG 2 contrast ratio of two sRGB colours (order does not matter)."""
    hi, lo = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)
