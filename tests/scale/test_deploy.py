"""The Procfile and the systemd units in deploy/ run what ./bin/run runs (herald_up's
process_commands), so a renamed module or a changed option cannot leave them behind."""

import configparser
import shlex
from pathlib import Path

import pytest
from django.conf import settings

from marketing.management.commands.herald_up import process_commands

ROOT = Path(settings.BASE_DIR)
UNITS = {
    "web": "herald-web.service",
    "worker": "herald-worker@.service",
    "beat": "herald-beat.service",
}


def bin_run() -> dict[str, list[str]]:
    """./bin/run's commands without the interpreter."""
    return {name: argv[1:] for name, argv in process_commands("python", "x:1", 1).items()}


def procfile() -> dict[str, list[str]]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    entries = dict(line.split(":", 1) for line in lines if line and not line.startswith("#"))
    return {name: shlex.split(command)[1:] for name, command in entries.items()}


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # systemd's keys are case-sensitive
    parser.read(ROOT / "deploy" / "systemd" / name)
    return parser


def options(argv: list[str]) -> set[str]:
    return {word for word in argv if word.startswith("--")}


def same_program(ours: list[str], theirs: list[str]) -> None:
    """The same module and subcommand, and every option ./bin/run gives (values may differ:
    addresses, process counts and file paths are the machine's)."""
    program = (
        3 if ours[1] == "gunicorn" else 5
    )  # -m gunicorn config.wsgi / -m celery -A config worker
    assert theirs[:program] == ours[:program]
    assert options(ours) <= options(theirs), options(ours) - options(theirs)


@pytest.mark.parametrize("process", sorted(UNITS))
def test_the_procfile_runs_what_bin_run_runs(process):
    same_program(bin_run()[process], procfile()[process])


@pytest.mark.parametrize("process", sorted(UNITS))
def test_each_systemd_unit_runs_what_bin_run_runs(process):
    service = unit(UNITS[process])["Service"]
    command = shlex.split(service["ExecStart"])
    assert command[0] == "/opt/herald/.venv/bin/python"
    same_program(bin_run()[process], command[1:])
    assert service["EnvironmentFile"] == "/etc/herald/herald.env"
    assert service["WorkingDirectory"] == "/opt/herald"


def test_each_worker_unit_names_its_worker_by_instance_and_host():
    command = shlex.split(unit(UNITS["worker"])["Service"]["ExecStart"])
    assert command[command.index("-n") + 1] == "%i@%H"


def test_the_procfile_migrates_before_a_release():
    assert procfile()["release"] == ["manage.py", "migrate", "--noinput"]
