"""The alert desk (tests/alert_desk.py) for the fan-out tests under a busy database."""

from alert_desk import desk

__all__ = ["desk"]
