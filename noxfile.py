"""Developer sessions: `nox -s tests`, `nox -s lint`. Both install from this repo's own files."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

CONSTRAINTS = ("-c", "constraints.txt")  # the tested torch/torchvision pair and linter versions
TYPED = ["src/detcli/config", "src/detcli/registry.py", "src/detcli/plugins.py",
         "src/detcli/suggest.py", "src/detcli/errors.py"]  # fmt: skip


@nox.session
def tests(session: nox.Session) -> None:
    """Install detcli with its test extras and run the test suite."""
    session.install(*CONSTRAINTS, "-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff on everything; mypy (strict) on the config and registry code."""
    session.install(*CONSTRAINTS, "ruff", "mypy", "types-PyYAML", "pluggy")
    session.run("ruff", "check", "src", "tests", "benchmarks", "plugins", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "plugins", "noxfile.py")
    session.run("mypy", *TYPED)
