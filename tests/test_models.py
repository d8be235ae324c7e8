import pytest
import torch

import kd_utils as kd


@pytest.mark.parametrize("model", [kd.TeacherCNN(), kd.StudentCNN(), kd.StudentCNN(width=16), kd.StudentMLP()])
def test_models_map_a_batch_of_images_to_ten_logits(model):
    logits = model.eval()(torch.randn(5, 1, 28, 28))
    assert logits.shape == (5, 10)
    assert logits.dtype == torch.float32


def test_teacher_has_a_few_hundred_thousand_parameters():
    assert 100_000 <= kd.count_parameters(kd.TeacherCNN()) <= 900_000


@pytest.mark.parametrize("student", [kd.StudentCNN(), kd.StudentMLP()])
def test_students_are_at_least_five_times_smaller_in_parameters_and_flops(student):
    teacher = kd.TeacherCNN()
    assert kd.count_parameters(teacher) >= 5 * kd.count_parameters(student)
    assert kd.flops_per_image(teacher) >= 5 * kd.flops_per_image(student)


def test_student_width_changes_its_size():
    assert kd.count_parameters(kd.StudentCNN(width=16)) > kd.count_parameters(kd.StudentCNN(width=8))


def test_models_have_named_stages_that_can_be_tapped():
    assert kd.stage_names(kd.TeacherCNN()) == ["block1", "block2", "block3", "classifier"]
    assert kd.stage_names(kd.StudentCNN()) == ["block1", "block2", "classifier"]
    assert kd.stage_names(kd.StudentMLP()) == ["hidden", "classifier"]


def test_build_model_rebuilds_from_name_and_config():
    model = kd.models.build_model("StudentCNN", **kd.StudentCNN(width=4).config)
    assert isinstance(model, kd.StudentCNN) and model.config["width"] == 4
    with pytest.raises(ValueError, match="known: TeacherCNN"):
        kd.models.build_model("ResNet")
