"""A real single-node Slurm for the tests: munged + slurmctld + slurmd from Debian's packages.

Everything Slurm writes (state, spool, logs, pid files) lives in a temporary folder; the controller and
node daemon listen on free ports so that two test sessions on one machine do not collide, and clients
find the cluster through ``SLURM_CONF`` (set in ``os.environ``, so ``sbatch --export=ALL`` jobs see it).
``start()`` returns a ``LocalSlurm`` whose ``stop()`` ends the daemons it started (by pid) and restores
the environment.  Needs root (``SlurmUser=root``) and the packages ``slurm-wlm`` and ``munge``
(``apt-get install -y slurm-wlm munge``).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REQUIRED = ("slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo", "munged")


class SlurmUnavailable(RuntimeError):
    """Slurm cannot be started here (missing packages, not root, daemons failed)."""


def missing_tools() -> list[str]:
    paths = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return [t for t in REQUIRED if shutil.which(t, path=paths) is None]


def ensure_packages() -> None:
    """Install slurm-wlm and munge with apt-get when they are missing (root on Debian/Ubuntu only)."""
    if not missing_tools() or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "slurm-wlm", "munge"]):
        r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=900)
        if r.returncode != 0:
            raise SlurmUnavailable(f"{' '.join(args)} failed: {(r.stderr or r.stdout).strip()[-500:]}")


def _which(tool: str) -> str:
    found = shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if not found:
        raise SlurmUnavailable(f"{tool} not found (apt-get install -y slurm-wlm munge)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _munge_works() -> bool:
    munge, unmunge = shutil.which("munge"), shutil.which("unmunge")
    if not munge or not unmunge:
        return False
    try:
        cred = subprocess.run([munge, "-n"], capture_output=True, timeout=10)
        if cred.returncode != 0:
            return False
        back = subprocess.run([unmunge], input=cred.stdout, capture_output=True, timeout=10)
        return back.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _node_line(host: str) -> str:
    """``slurmd -C`` describes this machine; RealMemory a bit below the total so the node is not drained."""
    out = subprocess.run([_which("slurmd"), "-C"], capture_output=True, text=True, timeout=30).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("NodeName=")), "")
    fields = dict(tok.split("=", 1) for tok in line.split() if "=" in tok)
    cpus = fields.get("CPUs") or str(os.cpu_count() or 1)
    mem = int(fields.get("RealMemory", "2048"))
    keep = {k: fields[k] for k in ("Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore") if k in fields}
    extra = " ".join(f"{k}={v}" for k, v in keep.items())
    return f"NodeName={host} CPUs={cpus} {extra} RealMemory={int(mem * 0.9)} State=UNKNOWN"


@dataclass
class LocalSlurm:
    root: Path
    conf: Path
    host: str
    procs: list = field(default_factory=list)  # (name, pid) of daemons this object started
    saved_env: dict = field(default_factory=dict)

    def log(self, name: str) -> str:
        path = self.root / "log" / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"

    def sinfo(self) -> str:
        return subprocess.run([_which("sinfo"), "-h", "-o", "%N %t %c"], capture_output=True, text=True,
                              timeout=20).stdout.strip()

    def stop(self) -> None:
        """Cancel leftover jobs, stop the daemons this object started (by pid) and restore the environment."""
        try:
            subprocess.run([_which("scancel"), "--user", "root"], capture_output=True, timeout=20)
            for _ in range(30):  # let slurmd end the jobs' processes before it stops
                out = subprocess.run([_which("squeue"), "-h", "-t", "running,completing"], capture_output=True,
                                     text=True, timeout=20).stdout
                if not out.strip():
                    break
                time.sleep(0.5)
        except (SlurmUnavailable, OSError, subprocess.TimeoutExpired):
            pass
        for name, pid in reversed(self.procs):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.procs.clear()
        for key, value in self.saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _read_pid(path: Path, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text().strip())
        time.sleep(0.2)
    raise SlurmUnavailable(f"daemon did not write {path}")


def start(root: Path, timeout_s: float = 90.0, install: bool = False) -> LocalSlurm:
    """Start a one-node cluster under ``root``; raises SlurmUnavailable with the logs when it cannot.
    With ``install``, missing packages are first installed with apt-get (as root)."""
    if install:
        ensure_packages()
    missing = missing_tools()
    if missing:
        raise SlurmUnavailable(f"missing {', '.join(missing)} (apt-get install -y slurm-wlm munge)")
    if os.geteuid() != 0:
        raise SlurmUnavailable("a local Slurm with SlurmUser=root needs root")
    root = Path(root)
    for sub in ("state", "spool", "log", "run"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    host = socket.gethostname().split(".")[0]
    conf = root / "slurm.conf"
    conf.write_text("\n".join([
        "ClusterName=boomtest",
        f"SlurmctldHost={host}",
        f"SlurmctldPort={_free_port()}",
        f"SlurmdPort={_free_port()}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        f"StateSaveLocation={root / 'state'}",
        f"SlurmdSpoolDir={root / 'spool'}",
        f"SlurmctldPidFile={root / 'run' / 'slurmctld.pid'}",
        f"SlurmdPidFile={root / 'run' / 'slurmd.pid'}",
        f"SlurmctldLogFile={root / 'log' / 'slurmctld.log'}",
        f"SlurmdLogFile={root / 'log' / 'slurmd.log'}",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "SchedulerType=sched/builtin",
        "ReturnToService=2",
        "MpiDefault=none",
        "SwitchType=switch/none",
        "KillWait=5",
        "MinJobAge=600",
        "InactiveLimit=0",
        "SlurmctldTimeout=30",
        "SlurmdTimeout=60",
        "MessageTimeout=20",
        "SlurmctldDebug=info",
        "SlurmdDebug=info",
        _node_line(host),
        # Two jobs may share a core: the tests' sleeping fixture jobs then do not hold back the real ones.
        f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:2",
        "",
    ]))
    slurm = LocalSlurm(root=root, conf=conf, host=host)
    slurm.saved_env = {"SLURM_CONF": os.environ.get("SLURM_CONF")}
    os.environ["SLURM_CONF"] = str(conf)
    try:
        if not _munge_works():
            munge_log = root / "log" / "munged.log"
            Path("/run/munge").mkdir(parents=True, exist_ok=True)
            if not Path("/etc/munge/munge.key").exists():
                subprocess.run([_which("mungekey"), "--create"], check=True, capture_output=True, timeout=30)
            pidfile = root / "run" / "munged.pid"
            r = subprocess.run([_which("munged"), "--force", f"--log-file={munge_log}", f"--pid-file={pidfile}"],
                               capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                raise SlurmUnavailable(f"munged failed: {r.stderr.strip()}")
            slurm.procs.append(("munged", _read_pid(pidfile)))
            if not _munge_works():
                raise SlurmUnavailable("munged started but munge -n | unmunge fails")
        env = {**os.environ, "SLURM_CONF": str(conf)}
        r = subprocess.run([_which("slurmctld"), "-f", str(conf)], env=env, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise SlurmUnavailable(f"slurmctld failed: {r.stderr.strip()}\n{slurm.log('slurmctld')}")
        slurm.procs.append(("slurmctld", _read_pid(root / "run" / "slurmctld.pid")))
        r = subprocess.run([_which("slurmd"), "-f", str(conf)], env=env, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise SlurmUnavailable(f"slurmd failed: {r.stderr.strip()}\n{slurm.log('slurmd')}")
        slurm.procs.append(("slurmd", _read_pid(root / "run" / "slurmd.pid")))
        deadline = time.monotonic() + timeout_s
        state = ""
        while time.monotonic() < deadline:
            state = slurm.sinfo()
            if state and state.split()[1].rstrip("*") in ("idle", "mix", "alloc"):
                return slurm
            time.sleep(1)
        raise SlurmUnavailable(f"node not idle after {timeout_s:.0f} s (sinfo: {state!r})\n"
                               f"{slurm.log('slurmctld')}\n{slurm.log('slurmd')}")
    except BaseException:
        slurm.stop()
        raise


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":  # manual use: python tests/slurm_support.py /tmp/slurm-root (Ctrl-C or SIGTERM stops it)
    import sys
    import tempfile

    signal.signal(signal.SIGTERM, _interrupt)

    cluster = start(Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="boom-slurm-")))
    print(f"export SLURM_CONF={cluster.conf}\n{cluster.sinfo()}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        cluster.stop()
