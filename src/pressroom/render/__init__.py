"""Renderers: each takes the Publication and the Theme and returns {relative path: bytes}."""
