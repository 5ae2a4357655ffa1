"""Runners execute one model process for one task; the orchestrator does the rest uniformly."""
from boom.runners.base import Execution, Runner

__all__ = ["Execution", "Runner"]
