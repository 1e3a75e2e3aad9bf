"""The one command line: overview, unknown commands, clean errors, every --help."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.errors import LabError
from vaelab import cli
from vaelab.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[1]


def boom_command(parser):
    """A command whose handler raises what the test asks for (see COMMANDS below)."""
    parser.add_argument("--raise", dest="what", default="lab")

    def handler(args):
        if args.what == "lab":
            raise LabError("the cache is damaged: delete it and prepare again")
        raise KeyboardInterrupt

    return handler


@pytest.fixture
def boom(monkeypatch):
    monkeypatch.setitem(COMMANDS, "boom", (f"{__name__}:boom_command", "test only"))


@pytest.mark.parametrize("argv", [[], ["--help"], ["-h"], ["help"]])
def test_overview_lists_every_command(argv, capsys):
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m vaelab <command> [options]")
    for name, (_, text) in COMMANDS.items():
        assert f"  {name} " in out and text in out, name


def test_unknown_command_exits_2_with_the_overview(capsys):
    assert main(["trian"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: unknown command 'trian'")
    assert "commands:" in captured.err and "  train " in captured.err


def test_a_lab_error_is_one_line_with_exit_code_2(boom, capsys):
    assert main(["boom"]) == 2
    err = capsys.readouterr().err
    assert err == "error: the cache is damaged: delete it and prepare again\n"


def test_ctrl_c_says_how_to_resume_with_exit_code_130(boom, capsys):
    assert main(["boom", "--raise", "interrupt"]) == 130
    assert "run the same command again to resume" in capsys.readouterr().err


def test_a_real_command_error_is_one_line(tmp_path, capsys):
    assert main(["sample", "--run-dir", str(tmp_path), "--out", "x.png"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_bad_arguments_exit_2_through_argparse(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--epochs", "many"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --epochs" in err and "not a whole number" in err


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_a_help_page(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m vaelab {name}")
    assert "-h, --help" in out


def test_every_command_lives_in_the_cli_package():
    """Check no argparse code is left in the ML modules: all targets are cli.*."""
    for name, (target, _) in COMMANDS.items():
        module, function = target.split(":")
        assert module.startswith("vaelab.cli."), name
        assert function.endswith("_command"), name
    assert Path(cli.__file__).parent.name == "cli"


def test_python_m_vaelab_and_help_without_tensorflow():
    """Check ``python -m vaelab`` runs, and --help of a data command loads no TF."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "vaelab"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0 and "train" in done.stdout
    assert "make-student" not in done.stdout  # the instructor's: python -m instructor
    done = subprocess.run(
        [sys.executable, "-m", "vaelab", "make-student"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 2
    assert "python -m instructor make-student" in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "instructor"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0 and "repair-submission" in done.stdout
    script = (
        "import sys\n"
        "from vaelab.cli import main\n"
        "for name in ('make-slice', 'download', 'prepare', 'report', 'train'):\n"
        "    try:\n"
        "        main([name, '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('TF_LOADED', 'tensorflow' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "TF_LOADED False"


def test_python_m_helpers_says_where_the_commands_went():
    """The students' package holds no command line; its old entry point says so."""
    done = subprocess.run(
        [sys.executable, "-m", "helpers", "make-student", "--check"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "`python -m vaelab <command>`" in done.stderr
    assert "`python -m instructor <command>`" in done.stderr
