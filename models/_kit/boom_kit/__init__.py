"""Shared plumbing for BOOM-TTE model entry points.

A model's ``main.py`` reads like a recipe: ``boom_kit.run(fit_predict)`` loads the task, seeds every
generator, limits threads, hands the model its train and test tables, and writes validated predictions
and the model report.  Featurisers and other helpers used by several models live here once.
"""
from boom_kit.entry import Context, Output, run
from boom_kit.runtime import Stopwatch, resolve_device, seed_everything, set_threads, versions
from boom_kit.scaling import TargetScaler
from boom_kit.splitting import validation_split

__all__ = [
    "Context",
    "Output",
    "run",
    "Stopwatch",
    "resolve_device",
    "seed_everything",
    "set_threads",
    "versions",
    "TargetScaler",
    "validation_split",
]
