"""Build every model image on this machine from the local base (no registry, no network in builds).

Fills the torch wheelhouse (``models/_base/wheels-torch``) with the wheels of torch and of every model's
requirements (pinned by the constraints; sdists are built into wheels on the host), rebuilds ``boom-tte/base-torch`` so it carries them, then builds
each model image through ``boom.images`` and records build time and size in
``bench/results/model_images.md``.  Run: ``python bench/build_model_images.py`` (tens of minutes, ~10 GB).

Then checks that every image *runs*: each model's smoke configuration on a small subset of its first task,
once through the local runner and once in its container (network none, read-only input), and records the
outcome, the scores and whether the container's predictions.csv is byte-identical to the local one (same
wheels, same seed, one thread: it should be).  ``--only a,b`` limits both steps to some models;
``--no-build`` skips the wheelhouse and the builds.
"""
from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import docker_support  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated model names (default: every model)")
    ap.add_argument("--no-build", action="store_true", help="only the container checks, on the images there are")
    ap.add_argument("--subset", type=int, default=60, help="train molecules of the check runs (default 60)")
    ap.add_argument("--props", default="density,mu",
                    help="tasks of the container checks, each where the model supports it (default density,mu: "
                         "one 10k_csd task with RDKit conformers, one QM9 task with DFT geometries)")
    args = ap.parse_args()
    docker_support.configure_env()
    from boom import registry

    models = {n: e for n, e in registry.discover().items() if not args.only or n in args.only.split(",")}
    out = REPO / "bench" / "results" / "model_images.md"
    text = out.read_text() if out.exists() else ""
    if not args.no_build:
        rows = build(models)
        text = ("# Model images built on this machine (local Debian rootfs base, offline wheelhouse)\n\n"
                f"Built by `python bench/build_model_images.py` on {time.strftime('%Y-%m-%d')} ({os.cpu_count()} "
                "cores). The wheelhouse row is the time to fill it (short when the wheels were already there); "
                "sizes include the shared base-torch layers (torch with its CUDA wheels, the wheelhouse).\n\n"
                "| image | build s | size MB |\n|---|---|---|\n" + "\n".join(rows) + "\n")
    checks = check_containers(models, args.subset, args.props.split(","))
    text = text.split(CHECKS_HEADING)[0].rstrip() + "\n\n" + CHECKS_HEADING + "\n\n" + CHECKS_INTRO + "\n\n" + \
        "| model | task | local | docker | local wall s | docker wall s | ID RMSE | OOD RMSE | predictions identical |\n" + \
        "|---|---|---|---|---|---|---|---|---|\n" + "\n".join(checks) + "\n"
    out.write_text(text)
    print(text)
    return 0 if "FAILED" not in text and "| failed" not in text else 1


CHECKS_HEADING = "## Container checks"
CHECKS_INTRO = ("Each model's smoke configuration (`smoke:` in its model.yaml) on `--subset` train molecules of "
                "each `--props` task it supports, seed 0, one thread: once through the local runner, once in its image through the "
                "Docker runner. Scores are the orchestrator's, from the container run.")


def check_containers(models: dict, subset: int, props: list[str]) -> list[str]:
    """Run every model locally and in its container; one Markdown row each."""
    from boom.options import RunOptions
    from boom.orchestrate import run
    from boom.runners.docker import DockerRunner
    from boom.runners.local import LocalRunner

    rows = []
    for name, entry, prop in ((n, e, p) for n, e in models.items() for p in props if p in e.spec.tasks):
        local = run(name, prop, LocalRunner(), RunOptions(subset=subset, smoke=True, threads=1, force=True))
        kept = None
        if (local.folder / "predictions.csv").exists():
            kept = local.folder.parent / f".local-{local.folder.name}.csv"
            shutil.copyfile(local.folder / "predictions.csv", kept)
        docker = run(name, prop, DockerRunner(), RunOptions(subset=subset, smoke=True, threads=1, force=True))
        same = "—"
        if kept is not None and (docker.folder / "predictions.csv").exists():
            same = "yes" if filecmp.cmp(kept, docker.folder / "predictions.csv", shallow=False) else "no"
            kept.unlink()
        s = docker.scores
        rmse = (f"{s.id.rmse:.4g}", f"{s.ood.rmse:.4g}") if s else ("—", "—")
        reason = f" ({docker.record.reason.splitlines()[0][:100]})" if docker.record.reason else ""
        rows.append(f"| {name} | {prop} | {local.record.status.value} | {docker.record.status.value}{reason} | "
                    f"{local.record.wall_s:.1f} | {docker.record.wall_s:.1f} | {rmse[0]} | {rmse[1]} | {same} |")
        print(rows[-1], flush=True)
    return rows


def build(models: dict) -> list[str]:
    """Fill the wheelhouse, rebuild base-torch with it, build every model image; one Markdown row each."""
    from boom import images

    docker_support.ensure_base_image("base")
    wheels = docker_support.TORCH_WHEELS  # base-torch copies it; the base has its own (docker_support.WHEELS)
    reqs = sorted(REPO.glob("models/*/requirements.txt"))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "-w", str(wheels),
                    "--find-links", str(wheels), "--find-links", str(docker_support.WHEELS),  # reuse, not refetch
                    "-c", str(REPO / "requirements" / "constraints.txt"),
                    *sum((["-r", str(r)] for r in reqs), []), "-r", str(REPO / "models/_base/torch-requirements.txt")],
                   check=True, env={k: v for k, v in os.environ.items() if k not in ("PIP_FIND_LINKS", "PIP_NO_INDEX")})
    in_base = {w.name for w in docker_support.WHEELS.glob("*.whl")}
    for w in wheels.glob("*.whl"):
        if w.name in in_base:
            w.unlink()
    rows = [f"| wheelhouse (all model requirements) | {time.perf_counter() - started:.0f} | — |"]
    if not os.environ.get("KEEP_BASE_TORCH"):  # (re)build base-torch so that the new wheels are inside
        subprocess.run(["docker", "rmi", "-f", images.base_tag("base-torch"), "boom-tte/base-torch:latest"],
                       capture_output=True)
    t = time.perf_counter()
    tag = images.ensure_base("base-torch", log=sys.stderr)
    rows.append(f"| {tag} | {time.perf_counter() - t:.0f} | {_size(tag)} |")
    for name, entry in models.items():
        t = time.perf_counter()
        try:
            tag = images.ensure_model(entry, log=sys.stderr)
            rows.append(f"| {tag} | {time.perf_counter() - t:.0f} | {_size(tag)} |")
        except Exception as exc:
            rows.append(f"| {name}: FAILED {str(exc).splitlines()[0][:120]} | {time.perf_counter() - t:.0f} | — |")
        print(rows[-1], flush=True)
    return rows


def _size(tag: str) -> str:
    out = subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", tag], capture_output=True, text=True)
    return f"{int(out.stdout.strip()) / 1e6:.0f}" if out.returncode == 0 else "?"


if __name__ == "__main__":
    sys.exit(main())
