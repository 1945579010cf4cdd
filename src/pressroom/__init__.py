"""Pressroom: one Markdown source, three outputs (EPUB, PDF handout, email newsletters)."""

__version__ = "0.1.0"
