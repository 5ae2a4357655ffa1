"""The shared feature cache: hits and misses, two writers at once, read-only use, corruption, ``boom cache``,
the runners' mounts, and rf predictions byte-identical with and without it."""
from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from boom_kit import feature_cache as fc
from boom_kit.featurise.descriptors import cached_descriptors, compute_descriptors, featuriser, train_test_descriptors
from tests.conftest import SAMPLE_SMILES, smoke_run

TOY = fc.Featuriser(name="toy", width=3, params={"scale": 2}, versions={"toy": "1"})


def toy_rows(smiles: list[str]) -> np.ndarray:
    """A cheap featuriser with values that differ per molecule (length, checksum of the characters, NaN on 'X')."""
    rows = [[len(s), sum(map(ord, s)) / 7.0, np.nan if "X" in s else 2.0 * len(s)] for s in smiles]
    return np.asarray(rows, dtype=np.float64).reshape(len(smiles), 3)


class Counting:
    """A compute function that remembers what it was asked for."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, smiles: list[str]) -> np.ndarray:
        self.seen += smiles
        return toy_rows(smiles)


def molecules(n: int, prefix: str = "C") -> list[str]:
    return [f"{prefix}{'C' * (i % 9)}O{i}" for i in range(n)]


def segments(root: Path) -> list[Path]:
    return sorted(root.rglob(f"*{fc.SEGMENT_SUFFIX}"))


# -- hits and misses -----------------------------------------------------------------------------------------
def test_miss_then_hit_and_only_new_molecules_computed(tmp_path: Path) -> None:
    cache = fc.FeatureCache(tmp_path / "c")
    first = Counting()
    smiles = molecules(300) + ["CX"]
    X, stats = cache.rows(TOY, smiles, first)
    assert sorted(first.seen) == sorted(smiles) and (stats.hits, stats.computed, stats.written) == (0, 301, 301)
    np.testing.assert_array_equal(X, toy_rows(smiles))  # NaN rows are stored as they are
    again = Counting()
    order = smiles[::-1] + smiles[:3]  # another order, duplicates: rows follow the input
    X2, stats2 = cache.rows(TOY, order, again)
    assert again.seen == [] and (stats2.hits, stats2.computed, stats2.molecules) == (301, 0, 301)
    assert X2.tobytes() == toy_rows(order).tobytes()
    more = Counting()
    _, stats3 = cache.rows(TOY, smiles[:50] + ["CCN", "CCS"], more)  # a subset plus two new molecules
    assert sorted(more.seen) == ["CCN", "CCS"] and stats3.hits == 50
    assert (tmp_path / "c" / TOY.folder_name / "meta.json").exists()


def test_another_featuriser_version_is_another_entry(tmp_path: Path) -> None:
    cache = fc.FeatureCache(tmp_path)
    cache.rows(TOY, molecules(20), Counting())
    newer = fc.Featuriser(name="toy", width=3, params={"scale": 2}, versions={"toy": "2"})
    assert newer.folder_name != TOY.folder_name
    again = Counting()
    cache.rows(newer, molecules(20), again)
    assert len(again.seen) == 20


def test_a_featuriser_returning_the_wrong_shape_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="expected width 3"):
        fc.FeatureCache(tmp_path).rows(TOY, ["CC", "CO"], lambda s: np.zeros((len(s), 2)))


def test_descriptors_through_the_cache_are_byte_identical(tmp_path: Path) -> None:
    smiles = SAMPLE_SMILES + ["not a smiles"]
    direct = compute_descriptors(smiles)
    cache = fc.FeatureCache(tmp_path)
    cold, s1 = cached_descriptors(smiles, cache=cache)
    warm, s2 = cached_descriptors(smiles, cache=cache)
    assert s1.computed == len(smiles) and s2.hits == len(smiles) and s2.computed == 0
    assert direct.tobytes() == cold.tobytes() == warm.tobytes()
    assert np.isnan(warm[-1]).all()
    meta = json.loads((tmp_path / featuriser().folder_name / "meta.json").read_text())
    assert meta["name"] == "rdkit-descriptors" and meta["versions"]["rdkit"] and meta["width"] == direct.shape[1]


def test_environment_variable_chooses_or_disables_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(fc.ENV, "off")
    X, stats = fc.cached_rows(TOY, ["CC"], toy_rows)
    assert stats is None and X.shape == (1, 3)
    monkeypatch.setenv(fc.ENV, str(tmp_path / "env-cache"))
    notes: list[str] = []
    train_test_descriptors(["CCO", "CCN"], ["CCC"], note=notes.append)
    assert segments(tmp_path / "env-cache") and any("0 of 3" in n and "3 stored" in n for n in notes)


# -- two writers at once ---------------------------------------------------------------------------------------
def _fill(root: str, smiles: list[str], log: str, barrier) -> None:
    import time

    def slow(batch: list[str]) -> np.ndarray:
        with open(log, "a") as fh:
            fh.write("".join(f"{s}\n" for s in batch))
        time.sleep(0.002 * len(batch))
        return toy_rows(batch)

    barrier.wait()
    X, _ = fc.FeatureCache(root).rows(TOY, smiles, slow)
    np.save(log + ".npy", X)


def test_two_processes_filling_the_same_cache_share_the_work(tmp_path: Path) -> None:
    smiles = molecules(600)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    logs = [str(tmp_path / f"w{i}.log") for i in range(2)]
    procs = [ctx.Process(target=_fill, args=(str(tmp_path / "c"), smiles if i == 0 else smiles[::-1], logs[i], barrier))
             for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    computed = [Path(l).read_text().split() if Path(l).exists() else [] for l in logs]
    assert sorted(computed[0] + computed[1]) == sorted(smiles)  # each molecule computed once, by one of them
    assert np.load(logs[0] + ".npy").tobytes() == toy_rows(smiles).tobytes()
    assert np.load(logs[1] + ".npy").tobytes() == toy_rows(smiles[::-1]).tobytes()
    assert not list((tmp_path / "c").rglob("*.tmp"))  # no partial files left behind
    check = Counting()
    fc.FeatureCache(tmp_path / "c").rows(TOY, smiles, check)
    assert check.seen == []


def test_many_segments_are_merged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fc, "SHARD_BITS", 1)  # 2 shards, so every call adds a segment to both
    monkeypatch.setattr(fc, "COMPACT_AT", 4)
    cache = fc.FeatureCache(tmp_path)
    everything: list[str] = []
    for batch in range(10):
        new = molecules(12, prefix=f"N{batch}")
        everything += new
        cache.rows(TOY, new, toy_rows)
    assert len(segments(tmp_path)) <= 2 * 4
    check = Counting()
    X, _ = cache.rows(TOY, everything, check)
    assert check.seen == [] and X.tobytes() == toy_rows(everything).tobytes()


# -- read-only and failing caches -----------------------------------------------------------------------------
def test_read_only_cache_reads_what_it_has_and_computes_the_rest_in_memory(tmp_path: Path) -> None:
    fc.FeatureCache(tmp_path).rows(TOY, molecules(40), toy_rows)
    before = segments(tmp_path)
    ro = fc.FeatureCache(tmp_path, writable=False)
    notes: list[str] = []
    new = molecules(40) + ["CCN", "CCS"]
    compute = Counting()
    X, stats = ro.rows(TOY, new, compute, note=notes.append)
    assert sorted(compute.seen) == ["CCN", "CCS"] and stats.read_only and stats.hits == 40 and stats.written == 0
    assert X.tobytes() == toy_rows(new).tobytes()
    assert segments(tmp_path) == before
    assert any("read-only" in n and "2 of 42" in n for n in notes)


def test_unwritable_folder_is_detected(tmp_path: Path) -> None:
    if os.getuid() == 0:
        pytest.skip("root writes anywhere: the permission probe cannot be exercised")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert not fc.FeatureCache(folder).writable
    finally:
        folder.chmod(0o755)


def test_a_refused_write_turns_the_cache_read_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*a, **k):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(fc, "write_segment", refuse)
    notes: list[str] = []
    X, stats = fc.FeatureCache(tmp_path).rows(TOY, molecules(30), toy_rows, note=notes.append)
    assert X.tobytes() == toy_rows(molecules(30)).tobytes() and stats.read_only and stats.written == 0
    assert any("refused a write" in n for n in notes)


# -- corruption -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["flip-value", "flip-key", "truncate", "garbage"])
def test_corrupt_segment_is_detected_recomputed_and_removed(tmp_path: Path, damage: str) -> None:
    smiles = molecules(200)
    fc.FeatureCache(tmp_path).rows(TOY, smiles, toy_rows)
    victim = segments(tmp_path)[0]
    seg = fc.Segment(victim, TOY)
    lost = set(seg.key_list())
    seg.close()
    raw = bytearray(victim.read_bytes())
    if damage == "flip-value":
        raw[-3] ^= 0x40
    elif damage == "flip-key":
        raw[len(raw) - seg.n * seg.width * 8 - 5] ^= 0x01
    elif damage == "truncate":
        raw = raw[: len(raw) - 9]
    else:
        raw = bytearray(b"not a segment at all")
    victim.write_bytes(bytes(raw))
    notes: list[str] = []
    compute = Counting()
    X, stats = fc.FeatureCache(tmp_path).rows(TOY, smiles, compute, note=notes.append)
    assert X.tobytes() == toy_rows(smiles).tobytes()  # never the damaged values
    assert {fc.smiles_key(s) for s in compute.seen} == lost and stats.corrupt_segments == 1
    assert not victim.exists() and any("recomputed" in n and "removed" in n for n in notes)


def test_symlinked_segments_are_not_read(tmp_path: Path) -> None:
    fc.FeatureCache(tmp_path / "c").rows(TOY, ["CC"], toy_rows)
    (shard,) = {p.parent for p in segments(tmp_path / "c")}
    outside = tmp_path / "elsewhere.seg"
    outside.write_bytes(b"x")
    (shard / "planted.seg").symlink_to(outside)
    assert fc.segment_files(shard) == [p for p in segments(tmp_path / "c") if not p.is_symlink()]


# -- boom cache -----------------------------------------------------------------------------------------------
def test_boom_cache_list_and_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from boom.cli import main

    root = tmp_path / "fc"
    monkeypatch.setenv("BOOM_FEATURE_CACHE", str(root))
    fc.FeatureCache(root).rows(TOY, molecules(120), toy_rows)
    fc.FeatureCache(root).rows(TOY, molecules(130), toy_rows)  # 10 new: duplicates are not counted twice
    cached_descriptors(SAMPLE_SMILES, cache=fc.FeatureCache(root))
    cli = CliRunner()
    listed = cli.invoke(main, ["cache", "list"])
    assert listed.exit_code == 0, listed.output
    assert str(root) in listed.output
    toy_line = next(l for l in listed.output.splitlines() if TOY.folder_name in l)
    assert " 130 " in toy_line and "toy 1" in toy_line
    desc_line = next(l for l in listed.output.splitlines() if featuriser().folder_name in l)
    assert f" {len(SAMPLE_SMILES)} " in desc_line and "rdkit " in desc_line
    gone = cli.invoke(main, ["cache", "clear", "--featuriser", "toy", "--yes"])
    assert gone.exit_code == 0 and "removed 1 featuriser folder" in gone.output
    assert not (root / TOY.folder_name).exists() and (root / featuriser().folder_name).exists()
    unknown = cli.invoke(main, ["cache", "clear", "--featuriser", "nope", "--yes"])
    assert unknown.exit_code == 1 and "no featuriser 'nope'" in unknown.output
    declined = cli.invoke(main, ["cache", "clear"], input="n\n")
    assert declined.exit_code == 1 and (root / featuriser().folder_name).exists()
    everything = cli.invoke(main, ["cache", "clear", "--yes"])
    assert everything.exit_code == 0 and "(empty)" in cli.invoke(main, ["cache", "list"]).output
    monkeypatch.setenv("BOOM_FEATURE_CACHE", "off")
    off = cli.invoke(main, ["cache", "list"])
    assert off.exit_code == 1 and "the feature cache is off" in off.output


def test_boom_cache_list_reports_corrupt_segments(tmp_path: Path) -> None:
    from boom.cli import main

    fc.FeatureCache(tmp_path).rows(TOY, molecules(50), toy_rows)
    segments(tmp_path)[0].write_bytes(b"garbage")
    out = CliRunner().invoke(main, ["cache", "list", "--path", str(tmp_path)])
    assert out.exit_code == 0 and "1 corrupt segment" in out.output


# -- how runs reach it ----------------------------------------------------------------------------------------
def test_default_location_is_under_the_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from boom import cache

    monkeypatch.delenv("BOOM_FEATURE_CACHE", raising=False)
    monkeypatch.setenv("BOOM_DATA_DIR", str(tmp_path / "data"))
    assert cache.cache_dir() == (tmp_path / "data" / "feature-cache").resolve()
    assert cache.model_env(in_container=False) == {"BOOM_FEATURE_CACHE": str((tmp_path / "data" / "feature-cache").resolve())}
    assert cache.model_env(in_container=True) == {"BOOM_FEATURE_CACHE": cache.CONTAINER_MOUNT}
    monkeypatch.setenv("BOOM_FEATURE_CACHE", "off")
    assert cache.cache_dir() is None and cache.model_env(in_container=True) == {"BOOM_FEATURE_CACHE": "off"}


def test_docker_runner_mounts_the_cache_read_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from boom_schema import Task
    from boom import images, registry
    from boom.runners import docker as docker_runner
    from tests.docker_support import FakeDockerClient
    from tests.test_docker_runner import FIXTURES

    monkeypatch.setenv("BOOM_MODELS_DIR", str(FIXTURES))
    monkeypatch.setenv("BOOM_FEATURE_CACHE", str(tmp_path / "fc"))
    monkeypatch.setattr(images, "ensure_model", lambda entry, log=None, docker_client=None: "boom-tte/broken:test")
    run_dir, input_dir = tmp_path / "run", tmp_path / "input"
    run_dir.mkdir()
    input_dir.mkdir()
    task = Task(run_id="r1", model="broken", dataset="10k_csd", property="density", unit="g/cm^3", readout="mean",
                input_dir=str(input_dir), output_dir=str(run_dir), device="cpu", threads=1)
    client = FakeDockerClient({"runc": {}})
    docker_runner.DockerRunner(docker_client=client).execute(registry.get("broken"), task, run_dir,
                                                             run_dir / "log.txt", timeout_s=30)
    kw = client.created
    assert kw["volumes"][str((tmp_path / "fc").resolve())] == {"bind": "/task/feature-cache", "mode": "ro"}
    assert kw["environment"]["BOOM_FEATURE_CACHE"] == "/task/feature-cache"
    monkeypatch.setenv("BOOM_FEATURE_CACHE", "off")
    docker_runner.DockerRunner(docker_client=client).execute(registry.get("broken"), task, run_dir,
                                                             run_dir / "log.txt", timeout_s=30)
    assert len(client.created["volumes"]) == 2 and client.created["environment"]["BOOM_FEATURE_CACHE"] == "off"


def test_apptainer_binds_the_cache_read_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from boom_schema import Task
    from boom import registry
    from boom.runners.apptainer import ApptainerRunner

    monkeypatch.setenv("BOOM_FEATURE_CACHE", str(tmp_path / "fc"))
    task = Task(run_id="r", model="rf", dataset="10k_csd", property="density", unit="g/cm^3", readout="mean",
                input_dir=str(tmp_path / "in"), output_dir=str(tmp_path / "run"), device="cpu", threads=1)
    cmd = ApptainerRunner(executable="apptainer", images=tmp_path).command(registry.get("rf"), task, tmp_path / "run",
                                                                          tmp_path / "rf.sif")
    assert f"{(tmp_path / 'fc').resolve()}:/task/feature-cache:ro" in cmd
    assert "BOOM_FEATURE_CACHE=/task/feature-cache" in cmd


# -- rf end to end --------------------------------------------------------------------------------------------
def test_rf_predictions_byte_identical_without_cold_and_warm_cache(prepared, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def once(cache: str) -> tuple[bytes, list[str]]:
        monkeypatch.setenv("BOOM_FEATURE_CACHE", cache)
        outcome = smoke_run("rf", "density", subset=60, seed=4)
        report = json.loads((outcome.folder / "model_report.json").read_text())
        return (outcome.folder / "predictions.csv").read_bytes(), report["notes"]

    plain, plain_notes = once("off")
    cold, cold_notes = once(str(tmp_path / "fc"))
    warm, warm_notes = once(str(tmp_path / "fc"))
    assert plain == cold == warm
    assert not any("feature cache" in n for n in plain_notes)
    (cold_line,) = [n for n in cold_notes if n.startswith("feature cache:")]
    (warm_line,) = [n for n in warm_notes if n.startswith("feature cache:")]
    n = int(cold_line.split(" of ")[1].split()[0])
    assert cold_line.startswith("feature cache: 0 of") and f"{n} computed, {n} stored" in cold_line
    assert warm_line.startswith(f"feature cache: {n} of {n}") and "0 computed, 0 stored" in warm_line


def test_featurisation_reports_progress_on_stderr_only_when_it_computes(tmp_path, capsys):
    """A long featurisation says how far it is (the run's log is streamed live); a cache hit says nothing."""
    from boom_kit import feature_cache as fc

    featuriser = fc.Featuriser("toy-progress", 2)
    cache = fc.FeatureCache(tmp_path, writable=True)
    smiles = ["C" * i for i in range(1, 60)]
    compute = lambda batch: np.array([[len(s), 1.0] for s in batch])  # noqa: E731
    cache.rows(featuriser, smiles, compute)
    err = capsys.readouterr().err
    assert "featurise toy-progress: computed 59/59 molecules" in err
    cache.rows(featuriser, smiles, compute)
    assert capsys.readouterr().err == ""
    lines = []
    progress = fc._Progress("x", 10, 0, every_s=0.0, stream=type("S", (), {"write": lines.append, "flush": lambda s: None})())
    progress.update(4)
    progress.done(10)
    assert lines[0].startswith("featurise x: computing 4/10") and lines[1].startswith("featurise x: computed 10/10")
