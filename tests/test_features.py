import pytest
import torch

import kd_utils as kd


def test_tap_records_the_named_stages_during_forward():
    model = kd.TeacherCNN(width=8)
    with kd.tap(model, ["block1", "block3"]) as features:
        model(torch.randn(2, 1, 28, 28))
    assert features["block1"].shape == (2, 8, 14, 14)
    assert features["block3"].shape == (2, 32, 3, 3)


def test_hooks_are_gone_after_the_context_exits():
    model = kd.StudentCNN()
    with kd.tap(model, ["block1", "block2"]):
        assert kd.hook_count(model) == 2
    assert kd.hook_count(model) == 0


def test_hooks_are_gone_even_when_the_body_raises():
    model = kd.StudentCNN()
    with pytest.raises(RuntimeError), kd.tap(model, "block2"):
        raise RuntimeError("boom")
    assert kd.hook_count(model) == 0


def test_an_unknown_name_lists_the_names_that_exist():
    with pytest.raises(KeyError) as caught, kd.tap(kd.StudentCNN(), "block9"):
        pass
    assert "block9" in str(caught.value) and "block1" in str(caught.value) and "classifier" in str(caught.value)


def test_logits_and_features_are_read_in_one_pass_with_no_hook_left():
    kd.set_seed(0)
    model = kd.StudentCNN(width=4).train()
    images = torch.randn(5, 1, 28, 28)
    logits, features = kd.predict_logits_and_features(model, images, "block2", batch_size=2)
    assert torch.allclose(logits, kd.predict_logits(model, images), atol=1e-6)
    with torch.no_grad():
        expected = model.eval().block2(model.block1(images))
    assert features.shape == (5, 8, 7, 7) and torch.allclose(features, expected, atol=1e-6)
    assert kd.hook_count(model) == 0
