"""Docker runner overhead vs the local runner, image sizes and build times -> bench/results/docker.md.

    .venv/bin/python bench/docker_overhead.py [--reps 3] [--subset 200]

Per-run overhead: the same run (same run id inputs, ``force``) through both runners; ``record.wall_s`` is
the runner's execute time (process / container start to exit), so the difference is what the container
costs: create + start + teardown + a cold Python in the image.  Two workloads: the fixture model in
``ok`` mode (reads the task, writes train-mean predictions: nearly pure overhead) and the random forest's
smoke configuration.  Build times: the rf image from scratch on an existing base (its layers removed
first), and the base image as recorded when it was last built (``--rebuild-base`` rebuilds it cold).
Uses the local Debian rootfs + offline wheelhouse of tests/docker_support.py as BASE_IMAGE.
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _runs(model: str, prop: str, runner, reps: int, subset: int, overrides: dict, smoke: bool) -> list[float]:
    from boom.options import RunOptions
    from boom.orchestrate import run

    walls = []
    for _ in range(reps):
        out = run(model, prop, runner, RunOptions(overrides=overrides, subset=subset, smoke=smoke, threads=1, force=True))
        assert out.record.status.value == "ok", out.record.reason
        walls.append(out.record.wall_s)
    return walls


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--subset", type=int, default=200)
    ap.add_argument("--rebuild-base", action="store_true")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "docker.md")
    args = ap.parse_args()
    os.environ.setdefault("BOOM_RAW_DIR", str(REPO.parent / "shared" / "data" / "llnl-chno-10k"))
    os.environ.setdefault("BOOM_RESULTS_DIR", tempfile.mkdtemp(prefix="boom-bench-docker-"))

    from tests import docker_support

    docker_support.configure_env()
    from boom import images, registry
    from boom.runners.docker import DockerRunner
    from boom.runners.local import LocalRunner

    client = images.client()
    base_build_s = None
    if args.rebuild_base:
        tag = images.base_tag("base")
        if images.exists(client, tag):
            client.images.remove(tag, force=True)
        t = time.perf_counter()
        docker_support.ensure_base_image("base")
        base_build_s = time.perf_counter() - t
    else:
        docker_support.ensure_base_image("base")

    # rf image from scratch on the existing base
    rf = registry.get("rf")
    rf_tag = images.model_tag(rf)
    images.ensure_model(rf, log=io.StringIO(), docker_client=client)
    t = time.perf_counter()  # the same build without the layer cache: what a changed model costs
    images.build(client, REPO, images.model_dockerfile(rf), rf_tag, images.model_buildargs(rf, images.base_tag("base")),
                 log=io.StringIO(), nocache=True)
    rf_build_s = time.perf_counter() - t
    t = time.perf_counter()
    images.ensure_model(rf, log=io.StringIO(), docker_client=client)
    rf_cached_s = time.perf_counter() - t

    rows = []
    fixtures = REPO / "tests" / "fixtures" / "models"
    old_models = os.environ.get("BOOM_MODELS_DIR")
    for label, model, overrides, smoke, models_dir in (
        ("fixture model, mode=ok (train mean)", "broken", {"mode": "ok"}, False, fixtures),
        ("rf smoke (20 trees)", "rf", {}, True, None),
    ):
        if models_dir:
            os.environ["BOOM_MODELS_DIR"] = str(models_dir)
        elif old_models is None:
            os.environ.pop("BOOM_MODELS_DIR", None)
        if model == "broken":
            images.ensure_model(registry.get("broken"), log=io.StringIO(), docker_client=client)
        local = _runs(model, "density", LocalRunner(), args.reps, args.subset, overrides, smoke)
        dock = _runs(model, "density", DockerRunner(), args.reps, args.subset, overrides, smoke)
        rows.append((label, statistics.median(local), statistics.median(dock)))
    if old_models is None:
        os.environ.pop("BOOM_MODELS_DIR", None)

    sizes = {}
    for repo in ("boom-tte/debian-rootfs:bookworm", images.base_tag("base"), rf_tag, "boom-tte/orchestrator:latest",
                 images.base_tag("base-torch")):
        if images.exists(client, repo):
            sizes[repo] = images.image_size_mb(client, repo)

    lines = [
        "# Docker runner: overhead, image sizes, build times",
        "",
        f"Measured by `bench/docker_overhead.py --reps {args.reps} --subset {args.subset}` on "
        f"{time.strftime('%Y-%m-%d')}, a 2-core / 24 GB machine shared with other jobs (load varies: medians of "
        f"{args.reps} runs), Docker Engine 20.10 with fuse-overlayfs, cgroup v1. BASE_IMAGE = the local Debian bookworm "
        "rootfs (tests/docker_support.py), pip offline from the wheelhouse. One thread per run, task density.",
        "",
        "## Per-run overhead (runner execute time, median)",
        "",
        "| workload | local s | docker s | overhead s |",
        "|---|---|---|---|",
    ]
    for label, loc, doc in rows:
        lines.append(f"| {label} | {loc:.2f} | {doc:.2f} | {doc - loc:+.2f} |")
    lines += ["", "## Images", "", "| image | size MB |", "|---|---|"]
    for tag, mb in sizes.items():
        lines.append(f"| `{tag}` | {mb:.0f} |")
    lines += ["", "## Build times", "", "| build | s |", "|---|---|",
              f"| rf image on an existing base, no layer cache (COPY + empty pip install) | {rf_build_s:.1f} |",
              f"| rf image again, content tag present (no build) | {rf_cached_s:.2f} |"]
    if base_build_s is not None:
        lines.append(f"| base image from the rootfs, offline wheels (cold) | {base_build_s:.0f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines) + "\n"
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
