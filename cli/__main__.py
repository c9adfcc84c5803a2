"""``python -m cli`` (how ``torchrun -m cli train ...`` launches the command)."""

from cli.main import main

main()
