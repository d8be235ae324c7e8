"""The teacher and the students, each built from named stages.

Every model is an ``nn.Sequential`` of named stages (``block1``, ``block2``, ...,
``classifier``), so a later notebook can tap any stage's output by name with
``kd.tap(model, ["block2"])`` and no model needs a second ``forward``.
Each model keeps the keyword arguments it was built with in ``model.config``,
so a checkpoint can rebuild it and detect a mismatch.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .data import NUM_CLASSES
from .losses import mean_probability_logits


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Return a 3×3 convolution, 2×2 max pooling, BatchNorm and ReLU.

    Pooling comes before BatchNorm and ReLU (max pooling commutes with ReLU), so the
    two element-wise layers run on a quarter of the pixels: about 1.5× faster on a CPU.
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.MaxPool2d(2),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class TeacherCNN(nn.Sequential):
    """A three-block CNN teacher: 28×28 → 14×14 (block1) → 7×7 (block2) → 3×3 (block3) → classifier."""

    def __init__(self, width: int = 24, hidden: int = 256, dropout: float = 0.3, num_classes: int = NUM_CLASSES):
        stages = OrderedDict(
            block1=conv_block(1, width),
            block2=conv_block(width, 2 * width),
            block3=conv_block(2 * width, 4 * width),
            classifier=nn.Sequential(
                nn.Flatten(),
                nn.Dropout(dropout),
                nn.Linear(4 * width * 3 * 3, hidden),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
                nn.Linear(hidden, num_classes),
            ),
        )
        super().__init__(stages)
        self.config = {"width": width, "hidden": hidden, "dropout": dropout, "num_classes": num_classes}


class StudentCNN(nn.Sequential):
    """A two-block CNN student of configurable width: 28×28 → 14×14 (block1) → 7×7 (block2) → classifier."""

    def __init__(self, width: int = 8, num_classes: int = NUM_CLASSES):
        stages = OrderedDict(
            block1=conv_block(1, width),
            block2=conv_block(width, 2 * width),
            classifier=nn.Sequential(nn.Flatten(), nn.Linear(2 * width * 7 * 7, num_classes)),
        )
        super().__init__(stages)
        self.config = {"width": width, "num_classes": num_classes}


class StudentMLP(nn.Sequential):
    """A small multilayer perceptron student: 784 pixels → `hidden` ReLU units (stage ``hidden``) → classifier."""

    def __init__(self, hidden: int = 64, num_classes: int = NUM_CLASSES):
        stages = OrderedDict(
            hidden=nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, hidden), nn.ReLU(inplace=True)),
            classifier=nn.Linear(hidden, num_classes),
        )
        super().__init__(stages)
        self.config = {"hidden": hidden, "num_classes": num_classes}


class Ensemble(nn.Module):
    """Several trained models as one teacher: its logits are the log of the members' mean probabilities.

    Averaging probabilities (not logits) is the ensemble of Hinton et al. (2015); the log
    turns the average back into logits, so ``softmax(ensemble(x))`` is that average.
    """

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        self.members = nn.ModuleList(members)

    def forward(self, x):
        return mean_probability_logits(member(x) for member in self.members)


ARCHITECTURES: dict[str, type[nn.Module]] = {
    cls.__name__: cls for cls in (TeacherCNN, StudentCNN, StudentMLP)
}


def build_model(architecture: str, **config) -> nn.Module:
    """Build a model by class name (``"TeacherCNN"``, ``"StudentCNN"``, ``"StudentMLP"``)."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; known: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[architecture](**config)


def is_convolutional(model: nn.Module) -> bool:
    """Return True if the model has a convolution (it then runs faster in channels-last layout on a CPU)."""
    return any(isinstance(module, nn.Conv2d) for module in model.modules())


def stage_names(model: nn.Module) -> list[str]:
    """Return the names of a model's top-level stages, the usual places to tap a feature."""
    return [name for name, _ in model.named_children()]
