"""The model-folder digest: what changes a model's run ids and image tag, and what does not."""
import shutil
from pathlib import Path

from boom import registry

FIXTURES = Path(__file__).parent / "fixtures" / "models"


def _copy(tmp_path: Path) -> registry.ModelEntry:
    src = next(p for p in sorted(FIXTURES.iterdir()) if (p / "model.yaml").exists())
    dest = tmp_path / "models" / src.name
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return registry.discover(tmp_path / "models")[src.name]


def test_code_and_spec_change_the_digest_notes_do_not(tmp_path):
    entry = _copy(tmp_path)
    before = entry.content_hash()
    (entry.folder / "README.md").write_text("# notes\nmeasured RMSE 0.1\n")
    assert entry.content_hash() == before, "a README edit must not orphan the runs it describes"
    (entry.folder / "extra.py").write_text("X = 1\n")
    after_code = entry.content_hash()
    assert after_code != before, "a new code file is a new model"
    spec = entry.folder / "model.yaml"
    spec.write_text(spec.read_text() + "\n# a comment is still a changed spec\n")
    assert entry.content_hash() != after_code
