import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import kd_utils as kd


def test_save_then_load_gives_the_same_weights(tmp_path):
    model = kd.StudentCNN(width=4)
    kd.save_checkpoint(model, tmp_path / "s.pt", {"note": "hello"})
    loaded, metadata = kd.load_checkpoint(tmp_path / "s.pt")
    assert isinstance(loaded, kd.StudentCNN) and metadata == {"note": "hello"}
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])


def test_a_checkpoint_of_another_architecture_gives_a_clear_error(tmp_path):
    kd.save_checkpoint(kd.StudentMLP(), tmp_path / "m.pt")
    with pytest.raises(kd.CheckpointMismatchError, match=r"holds a StudentMLP.*model is TeacherCNN.*retrain"):
        kd.load_checkpoint(tmp_path / "m.pt", kd.TeacherCNN())


def test_a_checkpoint_of_another_width_gives_a_clear_error(tmp_path):
    kd.save_checkpoint(kd.StudentCNN(width=4), tmp_path / "w.pt")
    with pytest.raises(kd.CheckpointMismatchError, match="width=4"):
        kd.load_checkpoint(tmp_path / "w.pt", kd.StudentCNN(width=8))


def test_a_corrupt_file_gives_a_clear_error(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(kd.CheckpointMismatchError, match="delete it"):
        kd.load_checkpoint(tmp_path / "bad.pt")


def test_a_missing_checkpoint_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="load_or_train_teacher"):
        kd.load_checkpoint(tmp_path / "none.pt")


def test_a_failed_save_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "t.pt"
    original = kd.StudentCNN(width=4)
    kd.save_checkpoint(original, path, {"version": 1})

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("interrupted mid-save")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        kd.save_checkpoint(kd.StudentCNN(width=4), path, {"version": 2})
    monkeypatch.undo()
    _, metadata = kd.load_checkpoint(path)
    assert metadata == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["t.pt"]  # no temporary file left behind


def test_killing_the_process_during_a_save_leaves_the_previous_checkpoint_intact(tmp_path):
    path = tmp_path / "t.pt"
    kd.save_checkpoint(kd.StudentCNN(width=4), path, {"version": 1})
    script = textwrap.dedent(
        f"""
        import os, signal, torch
        import kd_utils as kd
        real_save = torch.save
        def save_then_die(obj, file, *args, **kwargs):
            file.write(b"half a checkpoint")
            file.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        torch.save = save_then_die
        kd.save_checkpoint(kd.StudentCNN(width=4), {str(path)!r}, {{"version": 2}})
        """
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=kd.PROJECT_ROOT, env=dict(os.environ), timeout=120)
    assert result.returncode == -9
    _, metadata = kd.load_checkpoint(path)
    assert metadata == {"version": 1}


def test_load_or_train_teacher_trains_with_an_empty_folder_then_loads(data, monkeypatch, capsys):
    monkeypatch.setenv("KD_SMOKE", "1")
    teacher, metadata = kd.load_or_train_teacher(data)
    assert kd.teacher_path().is_file()
    assert "training one now" in capsys.readouterr().out
    again, metadata_again = kd.load_or_train_teacher(data)
    assert "Loaded the teacher" in capsys.readouterr().out
    assert metadata_again["test_accuracy"] == metadata["test_accuracy"]
    assert torch.allclose(kd.predict_logits(teacher, data.test_x[:16]), kd.predict_logits(again, data.test_x[:16]), atol=1e-4)


def test_load_or_train_teacher_retrains_and_says_so_when_the_checkpoint_does_not_fit(data, monkeypatch, capsys):
    monkeypatch.setenv("KD_SMOKE", "1")
    kd.save_checkpoint(kd.StudentMLP(), kd.teacher_path())
    teacher, _ = kd.load_or_train_teacher(data)
    assert "Retraining the teacher" in capsys.readouterr().out
    assert isinstance(teacher, kd.TeacherCNN)
    assert isinstance(kd.load_checkpoint(kd.teacher_path())[0], kd.TeacherCNN)


def test_a_checkpoint_with_flipped_bits_in_its_weights_is_refused(tmp_path):
    kd.set_seed(0)
    model = kd.StudentCNN(width=4)
    path = kd.save_checkpoint(model, tmp_path / "student.pt", {"note": "original"})
    payload = torch.load(path, weights_only=True)
    weight = payload["state_dict"]["block1.0.weight"]
    weight.view(torch.int32)[0, 0, 0, 0] ^= 1  # one flipped bit in one weight
    torch.save(payload, path)
    with pytest.raises(kd.CheckpointMismatchError, match="corrupted"):
        kd.load_checkpoint(path)


def test_metadata_that_could_not_be_read_back_is_refused_at_save_time(tmp_path):
    model = kd.StudentMLP(hidden=8)
    with pytest.raises(TypeError, match=r"metadata\['history'\]\[0\] is a Tensor"):
        kd.save_checkpoint(model, tmp_path / "student.pt", {"history": [torch.tensor(1.0)]})
    assert not (tmp_path / "student.pt").exists()
    with pytest.raises(TypeError, match="keys must be strings"):
        kd.save_checkpoint(model, tmp_path / "student.pt", {1: "one"})


def test_a_checkpoint_loads_back_with_its_checksum_verified(tmp_path):
    kd.set_seed(1)
    model = kd.StudentCNN(width=4)
    path = kd.save_checkpoint(model, tmp_path / "student.pt", {"epochs": 1, "nested": {"a": [1, 2.5, None]}})
    loaded, metadata = kd.load_checkpoint(path)
    assert metadata["nested"] == {"a": [1, 2.5, None]}
    assert kd.checkpoints.read_checkpoint(path)["weights_sha256"] == kd.checkpoints.weights_checksum(model.state_dict())


@pytest.mark.parametrize("value", [np.float64(0.5), np.float32(0.25), np.float16(0.5), np.int64(3), np.int32(-2),
                                   np.int8(1), np.uint8(7), np.bool_(True), np.array([0.5, 1.5]),
                                   np.array([[1, 2], [3, 4]], dtype=np.int16), np.array(2.0)])
def test_metadata_holding_numpy_scalars_and_arrays_round_trips_as_python_values(tmp_path, value):
    path = kd.save_checkpoint(kd.StudentMLP(hidden=8), tmp_path / "m.pt", {"mean": value, "nested": {"list": [value]}})
    _, metadata = kd.load_checkpoint(path)
    assert metadata["mean"] == value.tolist() and metadata["nested"]["list"] == [value.tolist()]
    assert not isinstance(metadata["mean"], np.generic)
