"""Runs that are killed (SIGKILL, as a power cut would) or interrupted (Ctrl-C) at a chosen
moment, then resumed with ``aeclust run --resume OUT``, end with the same bytes as a run
that was never stopped: assignments, embeddings and weights.

The processes are stopped by ``tests/helpers/interrupt_at.py``, which sends the signal to
itself before a given training step of a given phase, or when clustering starts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

HELPER = Path(__file__).parent / "helpers" / "interrupt_at.py"
OUTPUTS = ("assignments.csv", "embeddings.npy", "model.safetensors")
# model, its extra flags; 200 digits at batch 50 are 4 training steps per epoch
MODELS = {
    "conv": ["--reducer", "none", "--clusterer", "kmeans", "--epochs", "3"],
    "dcae-kmeans": ["--model", "dcae-kmeans", "--epochs", "2", "--param", "warmup_epochs=2",
                    "--param", "init=kmeans", "--no-compare"],
    "dec": ["--model", "dec", "--epochs", "2", "--param", "pretrain_epochs=2",
            "--param", "update_interval=3", "--param", "tol=0", "--param", "n_init=2"],
}  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = load_digits()
    path = tmp_path_factory.mktemp("data") / "digits.npz"
    np.savez(path, X=(d.images[:200] / 16).astype(np.float32)[:, None], y=d.target[:200])
    return path


def aeclust(*args, cwd, stop=None):
    """Run ``aeclust -q ARGS`` in ``cwd``; ``stop`` = (signal name, where) stops it."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    cmd = [sys.executable, "-m", "aeclust"] if stop is None else [
        sys.executable, str(HELPER), *stop, "--"]  # fmt: skip
    return subprocess.run([*cmd, "-q", *args], cwd=cwd, env=env, capture_output=True, text=True)


def run_args(model, data, out):
    return ["run", "--data", str(data), "--batch-size", "50", "--k", "4", "--seed", "3",
            *MODELS[model], "--out", out]  # fmt: skip


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    """model -> the directory of a run that was never stopped."""
    cwd = tmp_path_factory.mktemp("straight")
    done = {}
    for model in MODELS:
        result = aeclust(*run_args(model, data, model), cwd=cwd)
        assert result.returncode == 0, result.stderr
        done[model] = cwd / model
    return done


def same_outputs(a: Path, b: Path) -> None:
    for name in OUTPUTS:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.parametrize(
    "model, where",
    [
        ("conv", "autoencoder:6"),  # in epoch 2
        ("conv", "cluster"),  # after training, in k-means
        ("dcae-kmeans", "clustering:6"),  # in epoch 2 of the joint phase, after the warm-up
        ("dec", "clustering:3"),  # just before the first target update of epoch 1
    ],
)
def test_killed_run_resumes_to_the_same_bytes(model, where, data, uninterrupted, tmp_path):
    killed = aeclust(*run_args(model, data, "out"), cwd=tmp_path, stop=("SIGKILL", where))
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "out").exists() and (tmp_path / ".out.partial").is_dir()
    resumed = aeclust("run", "--resume", "out", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    same_outputs(tmp_path / "out", uninterrupted[model])
    assert not (tmp_path / ".out.partial").exists()


def test_ctrl_c_writes_a_checkpoint_exits_130_and_resumes(data, uninterrupted, tmp_path):
    stopped = aeclust(
        *run_args("conv", data, "out"), cwd=tmp_path, stop=("SIGINT", "autoencoder:5")
    )
    assert stopped.returncode == 130
    assert "continue with: aeclust run --resume out" in stopped.stderr
    ckpt = tmp_path / ".out.partial" / "checkpoints" / "autoencoder.safetensors"
    assert ckpt.is_file()  # written at the end of the interrupted batch, mid-epoch
    listed = aeclust("runs", "--stale", cwd=tmp_path)
    assert "autoencoder: epoch 2 stopped after batch 2" in listed.stdout
    assert "resume: aeclust run --resume out" in listed.stdout
    again = aeclust(*run_args("conv", data, "out"), cwd=tmp_path)  # a new run would lose it
    assert again.returncode == 2 and "aeclust run --resume out" in again.stderr
    resumed = aeclust("run", "--resume", "out", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    same_outputs(tmp_path / "out", uninterrupted["conv"])


def test_resume_refuses_other_flags_and_unknown_runs(tmp_path):
    result = aeclust("run", "--resume", "out", "--epochs", "3", cwd=tmp_path)
    assert result.returncode == 2 and "drop --epochs" in result.stderr
    result = aeclust("run", "--resume", "out", cwd=tmp_path)
    assert result.returncode == 2 and "No killed run of 'out' to resume" in result.stderr


def test_a_staging_folder_is_locked_by_its_run_and_kept_when_it_holds_checkpoints(tmp_path):
    from aeclust.errors import ConfigError
    from aeclust.rundir import is_locked, lock_stage, staged_dir, staging_path

    out = tmp_path / "out"
    stage = staging_path(out)
    stage.mkdir()
    held = lock_stage(stage, out)  # a live run writing it
    assert is_locked(stage)
    with pytest.raises(ConfigError, match="Another aeclust run is writing"):
        with staged_dir(out, resumable=True):
            pass
    held.close()  # that run ended (or was killed: the kernel drops the lock)
    assert not is_locked(stage)
    with pytest.raises(RuntimeError):  # an error after training started: checkpoints kept
        with staged_dir(out, resumable=True) as s:
            (s / "checkpoints").mkdir()
            (s / "checkpoints" / "autoencoder.safetensors").write_bytes(b"state")
            raise RuntimeError("figures failed")
    assert (stage / "checkpoints" / "autoencoder.safetensors").is_file()
    assert not (stage / ".lock").exists()
    with pytest.raises(RuntimeError):  # an error before any checkpoint: nothing stays
        with staged_dir(tmp_path / "other", resumable=True):
            raise RuntimeError("bad data")
    assert not staging_path(tmp_path / "other").exists()
