"""`python -m detcli` runs the CLI (also what `torchrun -m detcli` uses)."""

from detcli.cli import main

if __name__ == "__main__":
    main()
