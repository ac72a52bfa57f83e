"""Developer sessions: `nox -s tests`, `nox -s lint`. Both install from this repo's own files."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

CONSTRAINTS = ("-c", "constraints.txt")  # the tested torch/torchvision pair and linter versions
LINTED = ["src", "tests", "benchmarks", "plugins", "noxfile.py"]


@nox.session
def tests(session: nox.Session) -> None:
    """Install detcli with its test extras and run the test suite."""
    session.install(*CONSTRAINTS, "-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff on everything; mypy (strict, see pyproject.toml) on the whole package."""
    # detcli itself with its runtime stack (torch, numpy, ...): mypy checks the package against
    # the same typed libraries the tests run with, not against `Any` stand-ins.
    session.install(*CONSTRAINTS, "-e", ".[lint]")
    session.run("ruff", "check", *LINTED)
    session.run("ruff", "format", "--check", *LINTED)
    session.run("mypy", "src/detcli")
