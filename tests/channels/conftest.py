"""The alert desk (tests/alert_desk.py) for the fake-channel tests."""

from alert_desk import desk

__all__ = ["desk"]
