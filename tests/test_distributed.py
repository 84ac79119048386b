"""Training in several processes (2 gloo processes on the CPU, started by torchrun)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

HELPERS = Path(__file__).parent / "helpers"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def torchrun(*args, cwd):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    return subprocess.run([*cmd, *args], cwd=cwd, env=ENV, capture_output=True, text=True)


def test_ranks_train_disjoint_parts_of_every_batch_and_only_rank_0_writes(tmp_path):
    result = torchrun(str(HELPERS / "ddp_toy.py"), str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["world"] == 2
    r0, r1 = report["ranks"]
    assert r0["weights"] == r1["weights"]  # DDP keeps the ranks' weights equal
    assert r0["history"] == r1["history"]  # the logged losses are the averages of both
    for e0, e1 in zip(r0["batches"], r1["batches"], strict=True):  # epochs
        assert len(e0) == len(e1)  # the same number of steps on every rank
        seen = [i for part in e0 + e1 for i in part]
        assert len(seen) == len(set(seen)) == 60  # disjoint, covering the 80% trained on
        assert all(abs(len(a) - len(b)) <= 1 for a, b in zip(e0, e1, strict=True))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt-rank0.safetensors"]


def test_adversarial_training_keeps_the_ranks_equal_but_draws_each_ranks_own_prior_samples(
    tmp_path,
):
    result = torchrun(str(HELPERS / "ddp_adversarial.py"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    r0, r1 = json.loads(result.stdout.strip().splitlines()[-1])["ranks"]
    assert r0["weights"] == r1["weights"]  # both optimizers' updates are synchronised
    assert r0["history"] == r1["history"]
    assert len(r0["first_prior_samples"]) == 2  # z_0 and the second group's prior
    for g0, g1 in zip(r0["first_prior_samples"], r1["first_prior_samples"], strict=True):
        assert g0 != g1  # not one batch-share of noise repeated on every rank


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    d = load_digits()
    path = tmp_path_factory.mktemp("data") / "digits.npz"
    np.savez(path, X=(d.images[:200] / 16).astype(np.float32)[:, None], y=d.target[:200])
    return path


def test_aeclust_run_with_two_processes_gives_the_same_bytes_twice(digits, tmp_path):
    args = ["run", "--data", str(digits), "--epochs", "2", "--batch-size", "50", "--k", "4",
            "--reducer", "none", "--clusterer", "kmeans", "--nproc", "2"]  # fmt: skip
    for out in ("a", "b"):
        cmd = [sys.executable, "-m", "aeclust", "-q", *args, "--out", out]
        result = subprocess.run(cmd, cwd=tmp_path, env=ENV, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert result.stdout.count("Run directory:") == 1  # rank 0 reports, alone
    for name in ("assignments.csv", "embeddings.npy", "model.safetensors"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # no staging left
    assert "nproc: 2" in (tmp_path / "a" / "config.yaml").read_text()  # --resume reuses it
    state = json.loads(
        subprocess.run(
            [sys.executable, "-c", "import json,sys;from safetensors import safe_open;"
             "f=safe_open(sys.argv[1],'pt');print(f.metadata()['identity'])",
             str(tmp_path / "a" / "checkpoints" / "autoencoder.safetensors")],
            capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    assert state["processes"] == 2  # and a checkpoint is for that number of processes
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["clustering"]["method"] == "all-reduce"
    # every rank wrote the codes of its own rows; together they are the model's codes
    from aeclust.estimators import DeepClusterer

    model = DeepClusterer.load(tmp_path / "a")
    codes = model.transform(np.load(digits)["X"])
    assert np.allclose(np.load(tmp_path / "a" / "embeddings.npy"), codes, atol=1e-5)


def test_an_error_in_one_process_ends_all_at_once_said_once_with_nothing_left(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for k in range(32):  # a folder streamed lazily: the broken file fails one rank's read
        (tmp_path / "tiles" / "ab"[k % 2]).mkdir(parents=True, exist_ok=True)
        pixels = (rng.random((8, 8, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(tmp_path / "tiles" / "ab"[k % 2] / f"{k}.png")
    broken = tmp_path / "tiles" / "a" / "4.png"
    broken.write_bytes(broken.read_bytes()[:70])
    cmd = [sys.executable, "-m", "aeclust", "run", "--data", "tiles", "--stream", "--epochs",
           "1", "--batch-size", "8", "--model", "conv", "--out", "out", "--nproc", "2"]  # fmt: skip
    result = subprocess.run(cmd, cwd=tmp_path, env=ENV, capture_output=True, text=True,
                            timeout=240)  # fmt: skip # before the fix: hung for 30 minutes
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("aeclust: error:") == 1, result.stderr
    assert "a/4.png' could not be decoded" in result.stderr
    assert "Traceback" not in result.stderr and "ChildFailedError" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiles"]  # no staging directory


def test_the_launcher_reports_a_kill_else_the_users_error_once_else_the_first_traceback(
    tmp_path,
):
    from aeclust.training.launch import _clean_stage, _report

    class Ended:
        def __init__(self, exitcode, timestamp=0):
            self.exitcode, self.timestamp = exitcode, timestamp

        def signal_name(self):
            return {-9: "SIGKILL", -15: "SIGTERM"}[self.exitcode]

    records = [
        {"rank": 1, "time": 2.0, "code": 1, "text": "Traceback: gloo connection closed\n"},
        {"rank": 0, "time": 1.0, "code": 1, "text": "Traceback: the first\n"},
    ]
    for r in records:
        (tmp_path / f"{r['rank']}.json").write_text(json.dumps(r))
    stopped = {0: Ended(1), 1: Ended(-15)}  # the agent's own SIGTERM is no cause
    assert _report(tmp_path, stopped, 2) == ("[process 0 of 2] Traceback: the first", 1)
    killed = {0: Ended(1, 5), 1: Ended(-9, 4)}  # out of memory, then the others' errors
    text, code = _report(tmp_path, killed, 2)
    assert "process 1 of 2 was killed by SIGKILL (out of memory?" in text and code == 137
    for rank in (2, 3):  # every process hit the same mistake: said once, with its status
        user = {"rank": rank, "time": 3.0, "code": 2, "text": "aeclust: error: fix X"}
        (tmp_path / f"{rank}.json").write_text(json.dumps(user))
    assert _report(tmp_path, stopped, 4) == ("aeclust: error: fix X", 2)
    for checkpoints in (False, True):  # a failed run's staging: removed unless resumable
        stage = tmp_path / f".out{checkpoints}.partial"
        (stage / "checkpoints").mkdir(parents=True)
        if checkpoints:
            (stage / "checkpoints" / "autoencoder.safetensors").write_bytes(b"x")
        note = {"stage": str(stage), "out": f"out{checkpoints}", "command": "run"}
        (tmp_path / "stage.json").write_text(json.dumps(note))
        _clean_stage(tmp_path / "stage.json", "")
        assert stage.is_dir() == checkpoints
