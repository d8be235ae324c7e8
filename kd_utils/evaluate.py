"""Accuracy, predictions, confusion, agreement, calibration, and the cost of a model."""

from __future__ import annotations

import io

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import config
from .checkpoints import computing_environment, fingerprint, store_path, weights_checksum
from .features import tap
from .losses import ensemble_logits
from .models import Ensemble


@torch.no_grad()
def predict_logits(model: nn.Module, images: Tensor, batch_size: int = 1024, device: torch.device | str | None = None) -> Tensor:
    """Return the model's logits for `images` (on the CPU), computed in eval mode in batches."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    outputs = [model(batch.to(device)).float().cpu() for batch in images.split(batch_size)]
    model.train(was_training)
    return torch.cat(outputs) if outputs else torch.empty(0)


def stored_logits(model: nn.Module, images: Tensor, batch_size: int = 1024) -> Tensor:
    """Return ``kd.predict_logits(model, images)``, computed once and then read back from the checkpoint folder.

    A teacher's logits of the same images feed several notebooks (03, 05 and 07 distil from the ensemble's
    logits of the 55,000 training images). The file is named by a fingerprint of the model's weights, the
    images, the torch version and the CPU instruction set, so a retrained teacher or other images never
    read stale logits; it is written atomically. An ``Ensemble``'s logits are combined from its members'
    stored logits (the same numbers to the bit), so a notebook that needs one member's logits reads them too.
    """
    if isinstance(model, Ensemble):
        return ensemble_logits([stored_logits(member, images, batch_size) for member in model.members])
    key = fingerprint(type(model).__name__, weights_checksum(model.state_dict()), images, batch_size,
                      computing_environment())
    path = store_path("logits", key)
    if path.is_file():
        try:
            return torch.load(path, map_location="cpu", weights_only=True)["logits"]
        except Exception:  # unreadable (a crash cannot leave half a file, but a disk can fail): compute again
            pass
    logits = predict_logits(model, images, batch_size)
    with config.atomic_write(path) as file:
        torch.save({"logits": logits, **computing_environment()}, file)
    return logits


@torch.no_grad()
def predict_logits_and_features(model: nn.Module, images: Tensor, layer: str, batch_size: int = 2048) -> tuple[Tensor, Tensor]:
    """Return the model's logits and the output of its submodule `layer` for `images`, computed once in eval mode.

    The features are read with a forward hook (``kd.tap``), so they can be cached like the logits
    and used as a hint's targets when the training images are not augmented.
    """

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    logits, features = [], []
    for batch in images.split(batch_size):
        with tap(model, layer) as tapped:
            logits.append(model(batch.to(device)).float().cpu())
        features.append(tapped[layer].float().cpu().clone())
    model.train(was_training)
    return torch.cat(logits), torch.cat(features)


def predictions(model: nn.Module, images: Tensor, batch_size: int = 1024) -> Tensor:
    """Return the predicted class of each image."""
    return predict_logits(model, images, batch_size).argmax(dim=1)


def accuracy(model_or_logits: nn.Module | Tensor, images_or_labels: Tensor, labels: Tensor | None = None) -> float:
    """Return top-1 accuracy in [0, 1]: ``accuracy(model, images, labels)`` or ``accuracy(logits, labels)``."""
    if isinstance(model_or_logits, nn.Module):
        if labels is None:
            raise TypeError("accuracy(model, images, labels) needs the labels")
        logits = predict_logits(model_or_logits, images_or_labels)
    else:
        logits, labels = model_or_logits, images_or_labels
    if len(logits) != len(labels):
        raise ValueError(f"{len(logits)} predictions but {len(labels)} labels")
    return (logits.argmax(dim=1) == labels.to(logits.device)).float().mean().item()


def confusion_matrix(labels: Tensor, predicted: Tensor, num_classes: int = 10) -> Tensor:
    """Return the (true class × predicted class) count matrix."""
    index = labels.long() * num_classes + predicted.long()
    return torch.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


def most_confused_pairs(confusion: Tensor, class_names: tuple[str, ...] | list[str], top: int = 5) -> list[tuple[str, str, int]]:
    """Return the `top` (true, predicted, count) off-diagonal cells of a confusion matrix, largest first."""
    off_diagonal = confusion.clone()
    off_diagonal.fill_diagonal_(0)
    counts, flat = off_diagonal.flatten().sort(descending=True)
    n = confusion.shape[0]
    return [(class_names[i // n], class_names[i % n], int(c)) for c, i in zip(counts[:top].tolist(), flat[:top].tolist())]


def agreement(logits_a: Tensor, logits_b: Tensor) -> float:
    """Return the top-1 match rate of two models' predictions on the same images."""
    if logits_a.shape != logits_b.shape:
        raise ValueError(f"logits of shapes {tuple(logits_a.shape)} and {tuple(logits_b.shape)} cannot be compared")
    return (logits_a.argmax(1) == logits_b.argmax(1)).float().mean().item()


def reliability(probabilities: Tensor, labels: Tensor, bins: int = 15) -> dict[str, Tensor]:
    """Return per-bin confidence, accuracy and counts over equal-width confidence bins."""
    confidence, predicted = probabilities.max(dim=1)
    correct = (predicted == labels).float()
    edges = torch.linspace(0, 1, bins + 1)
    bin_index = torch.bucketize(confidence, edges[1:-1], right=True)
    counts = torch.bincount(bin_index, minlength=bins).float()
    confidence_sum = torch.bincount(bin_index, weights=confidence, minlength=bins)
    correct_sum = torch.bincount(bin_index, weights=correct, minlength=bins)
    safe = counts.clamp_min(1)
    return {"edges": edges, "confidence": confidence_sum / safe, "accuracy": correct_sum / safe, "counts": counts}


def expected_calibration_error(probabilities: Tensor, labels: Tensor, bins: int = 15) -> float:
    """Return the ECE: the count-weighted mean |accuracy − confidence| over confidence bins."""
    table = reliability(probabilities, labels, bins)
    weights = table["counts"] / table["counts"].sum()
    return (weights * (table["accuracy"] - table["confidence"]).abs()).sum().item()


def fit_temperature(logits: Tensor, labels: Tensor, steps: int = 200) -> float:
    """Return the temperature that minimises the NLL of `logits` / T on held-out labels (Guo et al., 2017)."""
    log_temperature = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.LBFGS([log_temperature], lr=0.1, max_iter=steps, line_search_fn="strong_wolfe")
    logits = logits.detach().float()

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_temperature.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_temperature.detach().exp())


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Return the number of parameters of a model (with ``trainable_only=True``, those with requires_grad only)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def size_on_disk(model: nn.Module) -> int:
    """Return the bytes that ``torch.save(model.state_dict())`` writes."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def flops_per_image(model: nn.Module, input_shape: tuple[int, ...] = (1, 28, 28)) -> int:
    """Return the floating-point operations of one forward pass on one image (torch.utils.flop_counter).

    The counter counts a multiply-add as 2 FLOPs and covers convolutions and matrix
    products; element-wise layers (BatchNorm, ReLU, pooling) are not counted.
    """
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *input_shape, device=device))
    model.train(was_training)
    return int(counter.get_total_flops())


def latency(
    model: nn.Module,
    batch_size: int = 1,
    input_shape: tuple[int, ...] = (1, 28, 28),
    threads: int = 1,
    min_run_time: float = 0.5,
) -> dict[str, float]:
    """Measure CPU inference time with torch.utils.benchmark at a fixed thread count.

    Returns the median seconds per batch, seconds per image, images per second and the
    interquartile range, so that a reader can judge the noise.
    """
    model = model.eval()
    images = torch.randn(batch_size, *input_shape, device=next(model.parameters()).device)
    return time_statement("with torch.inference_mode(): model(images)", {"model": model, "images": images, "torch": torch},
                          batch_size, threads, min_run_time)


def time_statement(stmt: str, arguments: dict, batch_size: int, threads: int, min_run_time: float) -> dict[str, float]:
    """Time `stmt`, one batch of `batch_size` images, with torch.utils.benchmark (for kd.latency and kd.deploy.time_inference).

    The timer warms up, repeats for at least `min_run_time` seconds at `threads` threads and reports the median.
    """
    import logging

    # Importing torch.utils.benchmark looks for a CUDA toolkit and, on a CPU machine that has nvcc,
    # logs "No CUDA runtime is found": noise on stderr for a CPU timing.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    from torch.utils import benchmark

    measurement = benchmark.Timer(stmt=stmt, globals=arguments, num_threads=threads).blocked_autorange(
        min_run_time=min_run_time)
    median = measurement.median
    return {
        "batch_size": batch_size,
        "threads": threads,
        "seconds_per_batch": median,
        "seconds_per_image": median / batch_size,
        "images_per_second": batch_size / median,
        "iqr_seconds": measurement.iqr,
    }


def recommend_student(rows, *, min_speedup: float = 5.0, max_loss: float = 2.0,
                      teacher: str = "teacher") -> tuple[dict, str]:
    """Return (the row of the student to ship, the reason), chosen on validation accuracy only.

    The rule, applied in this order, takes the most accurate student on validation among:
    1. the students at least `min_speedup`× faster than the teacher at batch 1 and at most `max_loss`
       percentage points below the teacher's validation accuracy;
    2. if none is within the accuracy limit, the students that meet the speed-up alone;
    3. if none is fast enough either, all students.
    Test accuracy is never read, so it stays an unbiased estimate of the shipped student.

    Args:
        rows: one dict per model with "name", "val_accuracy" (in %) and "speedup_batch1" (the teacher's
            latency at batch 1 divided by the model's); the row named `teacher` is the reference.
    """
    by_name = {row["name"]: row for row in rows}
    if teacher not in by_name:
        raise ValueError(f"no row named {teacher!r} among {', '.join(by_name)}")
    students = [row for row in rows if row["name"] != teacher]
    if not students:
        raise ValueError("no student to recommend")
    limit = by_name[teacher]["val_accuracy"] - max_loss
    fast = [row for row in students if row["speedup_batch1"] >= min_speedup]
    both = [row for row in fast if row["val_accuracy"] >= limit]
    if both:
        pool, reason = both, (f"the most accurate on validation of the students ≥ {min_speedup:g}× faster and "
                              f"≤ {max_loss:g} pp below the teacher")
    elif fast:
        pool, reason = fast, (f"no student is within {max_loss:g} pp of the teacher on validation, so the rule falls "
                              f"back to the most accurate on validation of the students ≥ {min_speedup:g}× faster")
    else:
        pool, reason = students, (f"no student is {min_speedup:g}× faster, so the rule falls back to the most "
                                  "accurate student on validation")
    return max(pool, key=lambda row: row["val_accuracy"]), reason
