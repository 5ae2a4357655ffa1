"""Build every model image on this machine from the local base (no registry, no network in builds).

Fills the offline wheelhouse with the wheels of every model's requirements (pinned by the constraints;
sdists are built into wheels on the host), rebuilds ``boom-tte/base-torch`` so it carries them, then builds
each model image through ``boom.images`` and records build time and size in
``bench/results/model_images.md``.  Run: ``python bench/build_model_images.py`` (tens of minutes, ~10 GB).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import docker_support  # noqa: E402


def main() -> int:
    docker_support.configure_env()
    from boom import images, registry

    wheels = docker_support.WHEELS
    reqs = sorted(REPO.glob("models/*/requirements.txt"))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "-w", str(wheels),
                    "-c", str(REPO / "requirements" / "constraints.txt"),
                    *sum((["-r", str(r)] for r in reqs), []), "-r", str(REPO / "models/_base/torch-requirements.txt")],
                   check=True, env={k: v for k, v in os.environ.items() if k not in ("PIP_FIND_LINKS", "PIP_NO_INDEX")})
    rows = [f"| wheelhouse (all model requirements) | {time.perf_counter() - started:.0f} | — |"]
    docker_support.ensure_base_image("base")
    tag = images.ensure_base("base-torch", log=sys.stderr)
    if not os.environ.get("KEEP_BASE_TORCH"):  # rebuild so that the new wheels are inside
        subprocess.run(["docker", "rmi", "-f", tag, "boom-tte/base-torch:latest"], capture_output=True)
        t = time.perf_counter()
        tag = images.ensure_base("base-torch", log=sys.stderr)
        rows.append(f"| {tag} | {time.perf_counter() - t:.0f} | {_size(tag)} |")
    for name, entry in registry.discover().items():
        t = time.perf_counter()
        try:
            tag = images.ensure_model(entry, log=sys.stderr)
            rows.append(f"| {tag} | {time.perf_counter() - t:.0f} | {_size(tag)} |")
        except Exception as exc:
            rows.append(f"| {name}: FAILED {str(exc).splitlines()[0][:120]} | {time.perf_counter() - t:.0f} | — |")
        print(rows[-1], flush=True)
    out = REPO / "bench" / "results" / "model_images.md"
    out.write_text("# Model images built on this machine (local Debian rootfs base, offline wheelhouse)\n\n"
                   "| image | build s | size MB |\n|---|---|---|\n" + "\n".join(rows) + "\n")
    print(out.read_text())
    return 0 if not any("FAILED" in r for r in rows) else 1


def _size(tag: str) -> str:
    out = subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", tag], capture_output=True, text=True)
    return f"{int(out.stdout.strip()) / 1e6:.0f}" if out.returncode == 0 else "?"


if __name__ == "__main__":
    sys.exit(main())
