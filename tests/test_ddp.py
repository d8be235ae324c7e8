"""scripts/distill_ddp.py: two ranks launched by torchrun train exactly what one process running kd.train trains."""

from __future__ import annotations

import importlib.util
import sys
import time

import pytest
import torch

import kd_utils as kd
from kd_utils.checkpoints import weights_checksum

SCRIPT = kd.PROJECT_ROOT / "scripts" / "distill_ddp.py"
# 505 = 8 × 63 + 1: a global batch of 63 splits unevenly over 2 ranks (32 + 31), and the last batch holds one
# image, so rank 1 gets an empty slice: both are cases that a naive mean of the ranks' mean losses gets wrong.
IMAGES, BATCH, EPOCHS, SEED = 505, 63, 2, 3
SETTINGS = {"temperature": 2.0, "alpha": 0.5}
TOLERANCE = 1e-5  # the ranks add partial gradients in another order than one process does: float rounding only


def _arguments(logits_path, out, *extra):
    return ["--train-images", IMAGES, "--teacher-logits", logits_path, "--out", out, "--epochs", EPOCHS,
            "--batch-size", BATCH, "--seed", SEED, "--temperature", SETTINGS["temperature"],
            "--alpha", SETTINGS["alpha"], "--hidden", 32, *extra]


@pytest.fixture(scope="module")
def teacher_logits_file(tmp_path_factory):
    generator = torch.Generator().manual_seed(0)
    path = tmp_path_factory.mktemp("ddp") / "teacher_logits.pt"
    torch.save(3 * torch.randn(IMAGES, kd.NUM_CLASSES, generator=generator), path)
    return path


@pytest.fixture(scope="module")
def single_process_student(data, teacher_logits_file):
    """The reference: kd.train, in this process, on the same images, logits, seed and schedule."""
    kd.set_seed(SEED)
    student = kd.StudentMLP(hidden=32)
    kd.train(student, data.train_x[:IMAGES], data.train_y[:IMAGES], teacher_logits=torch.load(teacher_logits_file),
             epochs=EPOCHS, batch_size=BATCH, seed=SEED, progress=False, verbose=False, device="cpu", **SETTINGS)
    return student


def _max_difference(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_two_ranks_end_identical_and_equal_to_a_single_process_kd_train(tmp_path, teacher_logits_file,
                                                                         single_process_student):
    out = tmp_path / "ddp_student.pt"
    output = kd.deploy.run_torchrun(SCRIPT, _arguments(teacher_logits_file, out), nproc_per_node=2, timeout=240,
                             env={"KD_SMOKE": "1"})
    assert "distill_ddp: 2 rank(s) (gloo, cpu)" in output and "weights identical on all ranks" in output, output
    student, metadata = kd.load_checkpoint(out)
    assert metadata["world_size"] == 2
    checksums = metadata["rank_checksums"]  # each computed by its own rank from its own weights
    assert len(checksums) == 2 and checksums[0] == checksums[1], "the ranks' weights differ"
    assert weights_checksum(student.state_dict()) == checksums[0]
    assert _max_difference(student, single_process_student) < TOLERANCE
    assert _max_difference(student, kd.StudentMLP(hidden=32)) > 0.01, "the student did not train"


def test_the_script_without_torchrun_trains_in_one_process_like_kd_train(tmp_path, monkeypatch, teacher_logits_file,
                                                                         single_process_student):
    monkeypatch.setenv("KD_SMOKE", "1")
    for variable in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(variable, raising=False)
    spec = importlib.util.spec_from_file_location("distill_ddp", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "single.pt"
    assert script.main([str(a) for a in _arguments(teacher_logits_file, out)]) == 0
    student, metadata = kd.load_checkpoint(out)
    assert metadata["world_size"] == 1
    assert _max_difference(student, single_process_student) < TOLERANCE


def test_a_rank_that_dies_stops_the_launch_with_its_error(tmp_path, teacher_logits_file):
    start = time.perf_counter()
    with pytest.raises(kd.deploy.TorchrunError, match=r"rank 1 failed first with RuntimeError: rank 1 fails on purpose"):
        kd.deploy.run_torchrun(SCRIPT, _arguments(teacher_logits_file, tmp_path / "never.pt", "--fail-rank", 1),
                        nproc_per_node=2, timeout=240, env={"KD_SMOKE": "1"})
    assert not (tmp_path / "never.pt").exists()
    assert time.perf_counter() - start < 200, "the surviving rank should be stopped, not left waiting"


def test_a_missing_torchrun_is_named(tmp_path):
    with pytest.raises(kd.deploy.TorchrunError, match="torchrun is missing"):
        kd.deploy.run_torchrun(SCRIPT, [], launcher=[str(tmp_path / "no-such-torchrun")])


def test_a_launch_that_hangs_is_stopped_after_the_timeout():
    hanging = [sys.executable, "-c", "import time; time.sleep(60)"]  # stands in for ranks waiting on a dead peer
    start = time.perf_counter()
    with pytest.raises(kd.deploy.TorchrunError, match="did not finish within 1 s"):
        kd.deploy.run_torchrun(SCRIPT, [], launcher=hanging, timeout=1)
    assert time.perf_counter() - start < 30
