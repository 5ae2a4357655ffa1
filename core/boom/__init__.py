"""BOOM-TTE orchestrator (import name ``boom``): data and splits, registry, runners, scoring, reports."""
__version__ = "0.1.0"
