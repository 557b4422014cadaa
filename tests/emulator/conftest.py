"""Re-export the emulator fixtures for this directory."""

from emulator_fixtures import emulator

__all__ = ["emulator"]
