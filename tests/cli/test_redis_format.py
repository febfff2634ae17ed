"""`tether inspect` prints replies exactly as redis-cli does."""

from __future__ import annotations

from tether.cli.redis_format import render


def test_bulk_strings_are_quoted_with_c_escapes() -> None:
    assert render(b'say "hi"\n\x01') == '"say \\"hi\\"\\n\\x01"'


def test_nil_and_integers_read_as_in_redis_cli() -> None:
    assert render(None) == "(nil)"
    assert render(-1) == "(integer) -1"


def test_an_empty_array_reads_as_in_redis_cli() -> None:
    assert render([]) == "(empty array)"


def test_indexes_are_right_aligned_to_the_widest() -> None:
    lines = render([b"x"] * 10).splitlines()
    assert lines[0] == ' 1) "x"'
    assert lines[9] == '10) "x"'


def test_nested_arrays_are_indented_under_their_index() -> None:
    reply = [[b"1-0", [b"event", b"enqueued"]]]
    assert render(reply) == '1) 1) "1-0"\n   2) 1) "event"\n      2) "enqueued"'
