"""CommandLineToArgvW splitting."""

from __future__ import annotations

import mslex
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipper.sysmon.cmdline import split_command_line


@pytest.mark.parametrize(
    ("command_line", "expected"),
    [
        ("", []),
        ("a.exe", ["a.exe"]),
        ('"C:\\Program Files\\a.exe" -x y', ["C:\\Program Files\\a.exe", "-x", "y"]),
        # argv[0]: backslashes and quotes are not escapes; it ends at the closing quote
        ('"C:\\dir\\"x y', ["C:\\dir\\", "x", "y"]),
        ('a\\\\"b c', ['a\\\\"b', "c"]),
        # 2n backslashes + quote: n backslashes, quote toggles
        ('a "C:\\dir\\\\" b', ["a", "C:\\dir\\", "b"]),
        # 2n+1 backslashes + quote: n backslashes and a literal quote
        ('a \\"b\\" c', ["a", '"b"', "c"]),
        ('a \\\\\\"b', ["a", '\\"b']),
        # backslashes not before a quote are literal
        ("a C:\\dir\\\\x\\", ["a", "C:\\dir\\\\x\\"]),
        # doubled quote inside quotes: a literal quote, and quote mode ends
        ('a "b""c d" e', ["a", 'b"c', "d e"]),
        ('a """b c"""', ["a", '"b', 'c"']),
        ('a "" b', ["a", "", "b"]),
        ("a\tb  c ", ["a", "b", "c"]),
        # only space and tab separate arguments
        ("a b\nc", ["a", "b\nc"]),
        ("a b\u00a0c", ["a", "b\u00a0c"]),
        ('"a"b c', ["a", "b", "c"]),
        (" lead", ["", "lead"]),
        ('"unterminated arg0', ["unterminated arg0"]),
    ],
)
def test_split(command_line: str, expected: list[str]) -> None:
    assert split_command_line(command_line) == expected


def test_powershell_real_world() -> None:
    cmd = 'powershell.exe -c "Write-Host \\"a b\\"; dir C:\\Temp\\"'
    assert split_command_line(cmd) == ["powershell.exe", "-c", 'Write-Host "a b"; dir C:\\Temp"']


_ARG_TEXT = st.text(alphabet=st.sampled_from(["a", "b", " ", "\t", "\\", '"', "é", "'"]), max_size=40)


@given(_ARG_TEXT)
def test_arguments_agree_with_mslex(tail: str) -> None:
    """Past argv[0], with only space/tab as blanks, the rules are mslex's msvcrt ones."""
    assert split_command_line("prog.exe " + tail)[1:] == mslex.split_msvcrt(tail)


@given(st.lists(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20), max_size=8))
def test_quote_round_trip(args: list[str]) -> None:
    """Arguments quoted for CommandLineToArgvW come back unchanged."""
    command_line = " ".join(["prog.exe", *(mslex.quote(a, for_cmd=False) for a in args)])
    assert split_command_line(command_line) == ["prog.exe", *args]


@given(st.text(max_size=200))
def test_total(command_line: str) -> None:
    args = split_command_line(command_line)
    assert isinstance(args, list)
    assert all(isinstance(a, str) for a in args)
    assert bool(args) == bool(command_line)
