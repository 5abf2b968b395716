"""The stage cache: keys follow input contents, configuration and code; entries restore whole."""

import shutil
from pathlib import Path

import pytest

import stages.foreground
from flows import cache
from flows.config import PipelineConfig

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / "assets"


def test_path_inputs_are_keyed_by_content_not_name(tmp_path):
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    shutil.copy(ASSETS / "cabinet.png", a)
    shutil.copy(ASSETS / "cabinet.png", b)
    shutil.copy(ASSETS / "microwave.png", c)
    cfg = PipelineConfig().foreground
    assert cache.stage_key("foreground", cfg, (a,)) == cache.stage_key("foreground", cfg, (b,))
    assert cache.stage_key("foreground", cfg, (a,)) != cache.stage_key("foreground", cfg, (c,))
    # the configuration section and the stage (its code version) are part of the key
    other_cfg = PipelineConfig().with_overrides({"foreground.threshold": "0.6"}).foreground
    assert cache.stage_key("foreground", cfg, (a,)) != cache.stage_key("foreground", other_cfg, (a,))
    assert cache.code_version("foreground") != cache.code_version("texture")


def test_a_missing_input_file_is_an_error_not_a_key(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        cache.stage_key("foreground", PipelineConfig().foreground, (tmp_path / "gone.png",))


def test_stored_stage_restores_into_another_run_with_its_paths_moved(tmp_path):
    run_a, run_b = tmp_path / "runs" / "a", tmp_path / "runs" / "b"
    stage_a, stage_b = run_a / "01-foreground", run_b / "01-foreground"
    stage_a.mkdir(parents=True)
    stage_b.mkdir(parents=True)
    cfg = PipelineConfig().foreground
    result = stages.foreground.run(cfg, ASSETS / "microwave.png", stage_a)
    key = cache.stage_key("foreground", cfg, (ASSETS / "microwave.png",))
    cache_dir = tmp_path / ".cache"

    assert cache.lookup(cache_dir, key, stage_b, run_b) is None
    cache.store(cache_dir, key, stage_a, run_a, result)
    cache.store(cache_dir, key, stage_a, run_a, result)  # a second writer of the same key is a no-op
    assert [p.name for p in cache_dir.iterdir()] == [key]

    restored = cache.lookup(cache_dir, key, stage_b, run_b)
    assert restored.mask == stage_b / result.mask.relative_to(stage_a)
    assert restored.bbox == result.bbox and restored.mask_fraction == result.mask_fraction
    names_a = sorted(p.name for p in stage_a.iterdir())
    assert sorted(p.name for p in stage_b.iterdir()) == names_a
    for name in names_a:
        assert (stage_b / name).read_bytes() == (stage_a / name).read_bytes()
    # the restored outputs key the next stage exactly as the originals do
    assert cache.fingerprint(restored) == cache.fingerprint(result)
