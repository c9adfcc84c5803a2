"""``python -m iis_pipe.cli`` (how ``torchrun -m iis_pipe.cli train ...`` launches the command)."""

from iis_pipe.cli.main import main

main()
