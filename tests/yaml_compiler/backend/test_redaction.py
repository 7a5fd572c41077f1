"""A file output is scanned for secret values a chunk at a time, values across chunks included."""

from __future__ import annotations

from pathlib import Path

import pytest

from yaml_compiler.backend.runtime.redaction import Redactor

SECRET = "tok-0123456789"


@pytest.mark.parametrize("offset", range(0, 40, 3))
def test_a_value_is_found_wherever_it_falls_against_the_chunks(tmp_path: Path, offset: int) -> None:
    path = tmp_path / "out.bin"
    path.write_bytes(b"\x00" * offset + SECRET.encode() + b"\xff" * 17)
    redactor = Redactor(("TOKEN",), environ={"TOKEN": SECRET})
    assert redactor.found_in_file(path, chunk_size=8)
    path.write_bytes(b"\x00" * offset + SECRET[:-1].encode() + b"\xff" * 17)
    assert not redactor.found_in_file(path, chunk_size=8)


def test_each_line_of_a_multi_line_secret_is_looked_for(tmp_path: Path) -> None:
    key = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\n-----END KEY-----"
    path = tmp_path / "dump.txt"
    path.write_text("leaked: MIIEvQIBADANBgkqhkiG9w0B only\n")
    assert Redactor(("KEY",), environ={"KEY": key}).found_in_file(path)


def test_nothing_to_look_for_without_a_secret(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    path.write_text("anything")
    assert not Redactor(("UNSET_NAME",), environ={}).found_in_file(path)
