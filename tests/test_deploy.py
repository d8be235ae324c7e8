"""int8 quantization, ONNX export and ONNX Runtime: sizes, agreement with the float model, and clear errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import kd_utils as kd


@pytest.fixture(scope="module")
def mlp(data) -> kd.StudentMLP:
    """A StudentMLP(128) trained for one epoch on the smoke images: confident enough for argmax to mean something."""
    kd.set_seed(0)
    model = kd.StudentMLP(hidden=128)
    kd.train(model, data.train_x, data.train_y, epochs=1, seed=0, progress=False, verbose=False)
    return model.eval()


@pytest.fixture(scope="module")
def cnn(data) -> kd.StudentCNN:
    kd.set_seed(0)
    model = kd.StudentCNN(width=8)
    kd.train(model, data.train_x[:1500], data.train_y[:1500], epochs=1, seed=0, progress=False, verbose=False)
    return model.eval()


@pytest.fixture(scope="module")
def onnx_file(mlp, tmp_path_factory):
    return kd.deploy.export_onnx(mlp, tmp_path_factory.mktemp("onnx") / "mlp.onnx")


def test_dynamic_int8_mlp_is_more_than_3x_smaller_and_predicts_like_the_float_model(mlp, data):
    int8 = kd.deploy.quantize_dynamic_int8(mlp)
    assert int8.hidden[1]._get_name() == "DynamicQuantizedLinear"
    assert kd.size_on_disk(mlp) / kd.size_on_disk(int8) > 3.0  # 4 bytes a weight become 1, plus scales
    match = kd.deploy.logit_match(kd.predict_logits(mlp, data.test_x), kd.deploy.deployed_logits(int8, data.test_x))
    assert match["agreement"] >= 0.98
    assert 0 < match["max_abs_difference"] < 1.0  # int8 rounding shows, but stays small
    assert next(mlp.parameters()).dtype == torch.float32, "the float model must be left as it was"


def test_dynamic_quantization_names_a_weighted_layer_it_would_leave_in_float():
    with pytest.raises(kd.deploy.UnsupportedLayerError, match=r"'block1\.0' \(Conv2d\).*quantize_static_int8"):
        kd.deploy.quantize_dynamic_int8(kd.StudentCNN())


def test_dynamic_quantization_refuses_a_model_with_nothing_to_quantize():
    with pytest.raises(kd.deploy.UnsupportedLayerError, match="no layer that dynamic quantization supports"):
        kd.deploy.quantize_dynamic_int8(nn.Sequential(nn.Conv2d(1, 2, 3)), allow_float_layers=True)


def test_static_int8_cnn_is_about_2x_smaller_runs_int8_kernels_and_predicts_like_the_float_model(cnn, data):
    int8 = kd.deploy.quantize_static_int8(cnn, data.train_x[:500])
    assert int8.module.block1[0]._get_name() == "QuantizedConv2d"
    assert int8.module.block1[2]._get_name() == "QuantizedBNReLU2d", "BatchNorm and ReLU should be fused"
    assert kd.size_on_disk(cnn) / kd.size_on_disk(int8) > 1.8
    match = kd.deploy.logit_match(kd.predict_logits(cnn, data.test_x), kd.deploy.deployed_logits(int8, data.test_x))
    assert match["agreement"] >= 0.95, match


def test_static_quantization_needs_calibration_images(cnn):
    with pytest.raises(ValueError, match="calibration_images is empty"):
        kd.deploy.quantize_static_int8(cnn, torch.empty(0, 1, 28, 28))
    with pytest.raises(TypeError, match="float tensor"):
        kd.deploy.quantize_static_int8(cnn, torch.zeros(4, 1, 28, 28, dtype=torch.uint8))


def test_static_quantization_names_a_layer_without_an_int8_kernel():
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.GELU())
    with pytest.raises(kd.deploy.UnsupportedLayerError, match=r"layer '2' \(GELU\)"):
        kd.deploy.quantize_static_int8(model, torch.randn(8, 1, 28, 28))


def test_static_quantization_names_where_a_forward_with_float_arithmetic_fails():
    ensemble = kd.models.Ensemble([kd.StudentCNN(), kd.StudentCNN()])  # its forward averages with log_softmax
    with pytest.raises(kd.deploy.UnsupportedLayerError, match=r"Ensemble\.forward, after layer 'members\.0\.classifier\.1'"):
        kd.deploy.quantize_static_int8(ensemble, torch.randn(8, 1, 28, 28))


def test_onnx_runtime_matches_pytorch_at_any_batch_size(mlp, onnx_file, data):
    session = kd.deploy.onnx_session(onnx_file)
    for images in (data.test_x[:1], data.test_x[:7], data.test_x):
        match = kd.deploy.logit_match(kd.predict_logits(mlp, images), kd.deploy.deployed_logits(session, images, batch_size=500))
        assert match["images"] == len(images)
        assert match["agreement"] == 1.0
        assert match["max_abs_difference"] < 1e-4


def test_export_leaves_no_temporary_file_behind(onnx_file):
    assert [p.name for p in onnx_file.parent.iterdir()] == [onnx_file.name]


def test_onnx_session_rejects_images_of_the_wrong_shape(onnx_file):
    with pytest.raises(ValueError, match=r"expects input 'images' of shape \(batch, 1, 28, 28\), got .*\(2, 3, 32, 32\)"):
        kd.deploy.deployed_logits(kd.deploy.onnx_session(onnx_file), torch.zeros(2, 3, 32, 32))


def test_export_refuses_pytorch_int8_layers_and_names_the_first(mlp, tmp_path):
    with pytest.raises(kd.deploy.UnsupportedLayerError, match=r"'hidden\.1' \(DynamicQuantizedLinear\).*onnxruntime"):
        kd.deploy.export_onnx(kd.deploy.quantize_dynamic_int8(mlp), tmp_path / "int8.onnx")
    assert not list(tmp_path.iterdir())


def test_export_names_an_input_shape_the_model_rejects(mlp, tmp_path):
    with pytest.raises(ValueError, match=r"does not accept inputs of shape \(batch, 3, 32, 32\)"):
        kd.deploy.export_onnx(mlp, tmp_path / "mlp.onnx", input_shape=(3, 32, 32))
    with pytest.raises(ValueError, match="tuple of positive ints"):
        kd.deploy.export_onnx(mlp, tmp_path / "mlp.onnx", input_shape=[1, 28, 28])


def test_onnx_session_of_a_missing_file_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="kd.deploy.export_onnx"):
        kd.deploy.onnx_session(tmp_path / "missing.onnx")


def test_logit_match_counts_top1_agreement_and_the_largest_difference():
    reference = torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 3.0], [1.0, 0.0, 0.0], [0.0, 2.0, 1.0]])
    candidate = torch.tensor([[1.9, 1.2, 0.0], [0.0, 3.5, 3.0], [1.0, 0.0, 0.25], [0.0, 2.0, 1.0]])
    match = kd.deploy.logit_match(reference, candidate)
    assert match["images"] == 4
    assert match["agreement"] == pytest.approx(0.75)  # the second row's top-1 moves from class 2 to class 1
    assert match["max_abs_difference"] == pytest.approx(2.5)
    with pytest.raises(ValueError, match="cannot be compared"):
        kd.deploy.logit_match(reference, candidate[:3])


def test_time_inference_times_an_int8_model_and_an_onnx_session(mlp, onnx_file):
    for target in (kd.deploy.quantize_dynamic_int8(mlp), kd.deploy.onnx_session(onnx_file)):
        timing = kd.deploy.time_inference(target, batch_size=4, min_run_time=0.01)
        assert timing["seconds_per_batch"] > 0
        assert timing["images_per_second"] == pytest.approx(4 / timing["seconds_per_batch"])


def test_layer_times_times_every_layer_in_the_order_they_run_and_restores_the_threads(cnn):
    threads = torch.get_num_threads()
    times = kd.deploy.layer_times(cnn, torch.randn(32, 1, 28, 28), repeats=3, threads=1)
    assert [row["layer"] for row in times] == ["block1.0", "block1.1", "block1.2", "block1.3", "block2.0", "block2.1",
                                               "block2.2", "block2.3", "classifier.0", "classifier.1"]
    assert [row["type"] for row in times][:4] == ["Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU"]
    assert all(row["seconds"] > 0 for row in times)
    assert torch.get_num_threads() == threads
    with pytest.raises(ValueError, match="repeats must be at least 1"):
        kd.deploy.layer_times(cnn, torch.randn(2, 1, 28, 28), repeats=0)
