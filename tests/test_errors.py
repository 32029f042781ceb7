"""psirel.errors helpers."""

from __future__ import annotations

from psirel.errors import first_line


def test_first_line_keeps_the_first_non_blank_line_and_truncates():
    assert first_line(ValueError("\n  bad header\nat byte 12\n")) == "bad header"
    assert first_line(OSError("x" * 300)) == "x" * 200
    assert first_line(OSError("x" * 300), limit=120) == "x" * 120


def test_first_line_of_an_empty_message_is_the_type_name():
    assert first_line(KeyError()) == "KeyError"
    assert first_line(RuntimeError("   \n")) == "RuntimeError"
