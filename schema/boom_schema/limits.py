"""Size limits on what a model leaves in its run folder: part of the contract, so a model author can see them.

The orchestrator reads a model's files on the host (as root under compose), so everything in a run folder
is untrusted: a file past its limit fails the run with a one-line reason instead of being read whole.
Limits are generous multiples of what a well-behaved model writes.
"""
from __future__ import annotations

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30

#: predictions.csv: a fixed allowance plus this much per test molecule (a row ``mol_id,y_pred,y_std`` with
#: full float precision is about 60 bytes; 512 leaves room for long ids and padding, not for a disk image).
PREDICTIONS_BASE_BYTES = 64 * KIB
PREDICTIONS_BYTES_PER_ROW = 512

#: model_report.json: timings, versions, notes and small extras (the kit writes a few KB).
REPORT_MAX_BYTES = 4 * MIB

#: log.txt past this size is cut to its first and last halves with a note between them.
LOG_MAX_BYTES = 64 * MIB
#: how much of the log's end is read to find the model's one-line error.
LOG_TAIL_BYTES = 64 * KIB

#: the orchestrator's own files when read back (record.json embeds the model report, hence the margin).
RECORD_MAX_BYTES = REPORT_MAX_BYTES + 1 * MIB
SCORES_MAX_BYTES = 1 * MIB

#: default of ``resources.disk_gb`` in model.yaml: the most a run folder may hold after the run.
DEFAULT_DISK_GB = 4.0


def predictions_max_bytes(n_rows: int) -> int:
    """The largest predictions.csv accepted for a task with ``n_rows`` test molecules."""
    return PREDICTIONS_BASE_BYTES + PREDICTIONS_BYTES_PER_ROW * max(0, int(n_rows))


def describe_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``: sizes in reasons a person reads."""
    for unit, size in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"
