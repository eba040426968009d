"""User errors: every one the package raises is a UserError, and the CLI prints it as one line, exit 2."""

from __future__ import annotations

import inspect

import pytest

from srgan_lib import cli, errors


def test_every_error_class_is_a_user_error():
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__]
    assert len(classes) >= 6 and all(issubclass(c, errors.UserError) for c in classes)


@pytest.mark.parametrize("error", [errors.DataError, errors.ConfigError, errors.CheckpointError])
def test_the_cli_prints_one_line_even_for_a_multi_line_message(monkeypatch, capsys, error):
    def fail(args):
        raise error("first part\n  second part from a library\n")

    monkeypatch.setattr(cli, "_run_reproduce", fail)
    assert cli.main(["reproduce", "--only", "01"]) == 2
    err = capsys.readouterr().err
    assert err == "srgan reproduce: error: first part second part from a library\n"
