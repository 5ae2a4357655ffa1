"""BOOM-TTE orchestrator (import name ``boom``): data and splits, registry, runners, scoring, reports.

The Python API (``boom.load_task``, ``boom.evaluate``, ``boom.leaderboard``, ``boom.runs``; see ``boom.api``)
is imported on first use, so ``import boom`` stays cheap (no pandas, no RDKit).
"""
__version__ = "0.1.0"

_API = ("load_task", "evaluate", "leaderboard", "runs", "scores_frame", "LoadedTask")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from boom import api

        return getattr(api, name)
    raise AttributeError(f"module 'boom' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
