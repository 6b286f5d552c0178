"""`govtrack --help` and `govtrack serve --help` list every setting, generated from the Settings model."""

from __future__ import annotations

import re

import pytest

from api.cli import main
from api.settings import Settings


def _help(capsys: pytest.CaptureFixture[str], *command: str) -> str:
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", [(), ("serve",)])
def test_help_lists_every_setting(capsys: pytest.CaptureFixture[str], command: tuple[str, ...]) -> None:
    text = _help(capsys, *command)
    names = [f"GOVTRACK_{name.upper()}" for name in Settings.model_fields]
    assert [n for n in names if not re.search(rf"\b{n}\b", text)] == []


def test_every_setting_says_what_it_does() -> None:
    assert [name for name, field in Settings.model_fields.items() if not field.description] == []


def test_the_help_states_defaults_and_every_archive_scheme(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(capsys, "serve")
    archive = text[text.index("GOVTRACK_ARCHIVE_URL") : text.index("GOVTRACK_API_KEYS")]
    assert all(scheme in archive for scheme in ("file://", "s3://", "abfs://"))
    assert "GOVTRACK_MAX_BATCH_EVENTS (default 10000)" in text
    assert "GOVTRACK_ALLOW_UNAUTHENTICATED_BIND (default false)" in text
    assert "GOVTRACK_LOG_ORIGIN (default govtrack.local/log)" in text
