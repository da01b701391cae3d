"""Test support code shared across packages (plain modules; conftests import from here, never
from each other)."""
