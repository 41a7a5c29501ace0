from __future__ import annotations

from pbrx_images.plan.os_release import parse_os_release
from tests.unit.os_releases import ALPINE_3_19, DEBIAN_BOOKWORM


def test_debian_file():
    info = parse_os_release(DEBIAN_BOOKWORM)
    assert info["ID"] == "debian"
    assert info["VERSION_ID"] == "12"
    assert info["VERSION_CODENAME"] == "bookworm"
    assert info["PRETTY_NAME"] == "Debian GNU/Linux 12 (bookworm)"
    assert len(info) == 9


def test_alpine_file_unquoted_values():
    info = parse_os_release(ALPINE_3_19)
    assert info["ID"] == "alpine"
    assert info["VERSION_ID"] == "3.19.1"
    assert info["BUG_REPORT_URL"] == "https://gitlab.alpinelinux.org/alpine/aports/-/issues"


def test_comments_and_blank_lines_are_ignored():
    text = "# a comment\n\n   \nID=fedora\n  # indented comment\nVERSION_ID=39\n"
    assert parse_os_release(text) == {"ID": "fedora", "VERSION_ID": "39"}


def test_single_quotes_are_literal():
    assert parse_os_release("NAME='a \\\"b\\\" $x'\n") == {"NAME": 'a \\"b\\" $x'}


def test_double_quote_escapes():
    text = 'NAME="say \\"hi\\" \\$HOME \\`x\\` back\\\\slash \\n"\n'
    assert parse_os_release(text) == {"NAME": 'say "hi" $HOME `x` back\\slash \\n'}


def test_unquoted_backslash_escape():
    assert parse_os_release("NAME=foo\\ bar\n") == {"NAME": "foo bar"}


def test_concatenated_quoted_parts():
    assert parse_os_release("""NAME="a b"'c d'e\n""") == {"NAME": "a bc de"}


def test_empty_values():
    text = 'VERSION_CODENAME=""\nVARIANT=\nLOGO=\'\'\n'
    assert parse_os_release(text) == {"VERSION_CODENAME": "", "VARIANT": "", "LOGO": ""}


def test_trailing_comment_after_value():
    assert parse_os_release('ID=debian # the id\nNAME="x" #c\n') == {
        "ID": "debian", "NAME": "x"}


def test_malformed_lines_are_ignored():
    text = "\n".join([
        "ID=debian",
        "just some words",
        "NAME=two words",
        'PRETTY_NAME="unterminated',
        "VERSION='also unterminated",
        "1BAD=key",
        "BAD-KEY=x",
        "CMD=$(reboot)",
        "export FOO=bar",
        "=value",
        "TRAILING=backslash\\",
        "VERSION_ID=12",
    ])
    assert parse_os_release(text) == {"ID": "debian", "VERSION_ID": "12"}


def test_last_assignment_wins_and_whitespace_around_line():
    assert parse_os_release("  ID=a  \nID=b\n") == {"ID": "b"}


def test_crlf_line_endings():
    assert parse_os_release('ID=alpine\r\nNAME="Alpine Linux"\r\n') == {
        "ID": "alpine", "NAME": "Alpine Linux"}


def test_empty_text():
    assert parse_os_release("") == {}
