"""The email's plain-text part comes from the same Markdown parser as the HTML."""

from __future__ import annotations

from pressroom.render.text import markdown_to_text


def test_attributes_do_not_leak_into_the_text_part():
    text = markdown_to_text("[Book a session](https://clinic.example/book){.button}\n")
    assert text == "Book a session (https://clinic.example/book)\n"


def test_definition_lists_keep_terms_and_definitions_apart():
    text = markdown_to_text("Reps\n: How many times you repeat it.\n\nSets\n: Rounds of reps.\n")
    assert text == "Reps\n    How many times you repeat it.\n\nSets\n    Rounds of reps.\n"
