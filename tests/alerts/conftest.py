"""Fixtures for the alert tests (defined in tests/alert_desk.py, shared with the benches)."""

from alert_desk import desk, feeds

__all__ = ["desk", "feeds"]
