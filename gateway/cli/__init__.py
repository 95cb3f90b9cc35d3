"""The `stationgw` command: `main` here, one module per command group beside it."""

from gateway.cli.main import main

__all__ = ["main"]
