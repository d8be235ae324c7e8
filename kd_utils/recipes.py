"""Where the course's teachers come from: notebook 01's teacher and the ensemble that notebook 03 distils from.

The search behind notebook 03 (``experiments/search_full_label_kd.py``, results in
``experiments/results/full_label_search.csv``) found that an MLP student learns more from the
averaged soft targets of a few independently trained teachers than from any single one, even a
stronger single one. The ensemble's members are notebook 01's teacher (seed 0, trained live by
any notebook that needs it) and teachers trained with exactly the same recipe from other seeds,
shipped as checkpoint files in ``experiments/teachers/`` by
``experiments/train_teacher_variant.py --epochs 5 --shift 0 --seed N`` (about 40 s each on a
2-core CPU).
"""

from __future__ import annotations

from pathlib import Path

from . import config
from .checkpoints import load_checkpoint, load_or_train_teacher
from .evaluate import accuracy
from .models import Ensemble

SHIPPED_TEACHERS = config.PROJECT_ROOT / "experiments" / "teachers"
ENSEMBLE_SEEDS: tuple[int, ...] = (0, 1, 2)  # 0 is notebook 01's teacher


def ensemble_member_path(seed: int) -> Path:
    """Return the shipped checkpoint of the ensemble member trained from `seed` (seed 0 is notebook 01's teacher)."""
    return SHIPPED_TEACHERS / f"teacher_e5_shift0_seed{seed}.pt"


def load_teacher_ensemble(data=None, seeds: tuple[int, ...] = ENSEMBLE_SEEDS, verbose: bool = True):
    """Return (ensemble, metadata): notebook 01's teacher plus the shipped members of the other seeds.

    Metadata holds each member's test accuracy (as saved) and, when `data` is given, the
    ensemble's test accuracy on it.
    """
    members, accuracies = [], {}
    for seed in seeds:
        if seed == 0:
            member, metadata = load_or_train_teacher(data, verbose=False)
        else:
            path = ensemble_member_path(seed)
            if not path.is_file():
                raise FileNotFoundError(
                    f"the ensemble member of seed {seed} is missing ({config.relative_path(path)}); it ships with the "
                    f"course: restore it with git checkout, or retrain it with "
                    f"python experiments/train_teacher_variant.py --epochs 5 --shift 0 --seed {seed}"
                )
            member, metadata = load_checkpoint(path)
        members.append(member.eval())
        accuracies[seed] = metadata.get("test_accuracy")
    ensemble = Ensemble(members).eval()
    metadata = {"seeds": list(seeds), "member_test_accuracy": accuracies}
    if data is not None:
        metadata["test_accuracy"] = accuracy(ensemble, data.test_x, data.test_y)
    if verbose:
        print(f"Teacher ensemble of {len(members)} (seeds {', '.join(map(str, seeds))})"
              + (f": test accuracy {metadata['test_accuracy']:.2%}" if data is not None else ""))
    return ensemble, metadata
