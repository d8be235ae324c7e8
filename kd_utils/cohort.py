"""A cohort: many MLP students trained side by side as one batched model.

A comparison that a claim can rest on needs several seeds of every method (scratch,
distilled, label smoothing, the teacher's hard labels...). Trained one after another,
small MLPs spend most of each step in per-step overhead; stacked into one model whose
weights have a leading "member" dimension (``torch.baddbmm``), they train in one loop
at a fraction of the time. Nothing is shared between members: each has its own initial
weights (exactly those of ``StudentMLP`` after ``kd.set_seed(seed)``), its own data
order (that of ``kd.train`` with the same seed), its own targets and its own loss, and
AdamW updates every weight from its own gradient only. ``cohort.member(k)`` returns
member ``k`` as an ordinary ``StudentMLP``.

Each member k learns from its own ``kd.Objective``: the cohort's logits are (members, batch,
classes) and ``kd.objective_loss`` computes every member's loss at once from their stacked
weights (the member axis is just another axis), with ``kd.train``'s loop core
(``kd_utils.train.TrainingLoop``). The labels of a member are the dataset's (``labels="true"``)
or its teacher's top-1 predictions (``labels="teacher"``, pseudo-labelling).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from . import config
from .checkpoints import computing_environment, fingerprint, store_path
from .data import NUM_CLASSES, batch_indices, labelled_subset
from .losses import (
    IGNORE_LABEL,
    Objective,
    StackedObjectives,
    check_labels,
    check_teacher_logits,
    log_soft_targets,
    objective_loss,
)
from .models import StudentMLP
from .stats import check_seeds
from .train import TrainingLoop


class MLPCohort(nn.Module):
    """`len(seeds)` StudentMLP(hidden) students stacked into one model; forward gives (members, batch, classes)."""

    def __init__(self, hidden: int, seeds: Sequence[int], num_classes: int = NUM_CLASSES, feature_width: int = 0):
        """Build one StudentMLP(hidden) per seed; `feature_width` > 0 adds each member a hint regressor to it."""
        super().__init__()
        if len(seeds) == 0:
            raise ValueError("a cohort needs at least one seed")
        self.hidden, self.num_classes, self.seeds = hidden, num_classes, list(seeds)
        members = []
        for seed in self.seeds:
            config.set_seed(seed)
            members.append(StudentMLP(hidden=hidden, num_classes=num_classes))
        self.weight1 = nn.Parameter(torch.stack([m.hidden[1].weight.detach().t() for m in members]))
        self.bias1 = nn.Parameter(torch.stack([m.hidden[1].bias.detach()[None] for m in members]))
        self.weight2 = nn.Parameter(torch.stack([m.classifier.weight.detach().t() for m in members]))
        self.bias2 = nn.Parameter(torch.stack([m.classifier.bias.detach()[None] for m in members]))
        self.regressor = None
        if feature_width:  # one linear regressor per member, hidden -> teacher feature, dropped at inference
            regressors = [nn.Linear(hidden, feature_width) for _ in self.seeds]
            self.regressor = nn.ParameterList([
                nn.Parameter(torch.stack([r.weight.detach().t() for r in regressors])),
                nn.Parameter(torch.stack([r.bias.detach()[None] for r in regressors])),
            ])

    def __len__(self) -> int:
        return len(self.seeds)

    def forward(self, images: Tensor) -> Tensor:
        """Return logits (members, batch, classes).

        `images` is one batch shared by every member, (batch, 1, 28, 28) or (batch, 784), or
        one batch per member, (members, batch, 1, 28, 28) or (members, batch, 784).
        """
        if images.dim() in (2, 4):
            x = images.reshape(1, images.shape[0], -1).expand(len(self), -1, -1)
        elif images.dim() in (3, 5) and images.shape[0] == len(self):
            x = images.reshape(len(self), images.shape[1], -1)
        else:
            raise ValueError(f"expected images of shape (batch, 1, 28, 28) or ({len(self)}, batch, 1, 28, 28), "
                             f"got {tuple(images.shape)}")
        if x.shape[-1] != self.weight1.shape[1]:
            raise ValueError(f"a cohort member expects 28×28 images (784 pixels), got {x.shape[-1]} values per image")
        return self.forward_with_hidden(x)[0]

    def forward_with_hidden(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return (logits, hidden units) for flattened images x of shape (members, batch, 784)."""
        hidden = torch.baddbmm(self.bias1, x, self.weight1).relu_()
        return torch.baddbmm(self.bias2, hidden, self.weight2), hidden

    def member(self, index: int) -> StudentMLP:
        """Return member `index` as an ordinary StudentMLP (a copy of its weights)."""
        model = StudentMLP(hidden=self.hidden, num_classes=self.num_classes)
        with torch.no_grad():
            model.hidden[1].weight.copy_(self.weight1[index].t())
            model.hidden[1].bias.copy_(self.bias1[index, 0])
            model.classifier.weight.copy_(self.weight2[index].t())
            model.classifier.bias.copy_(self.bias2[index, 0])
        return model.eval()

    @torch.no_grad()
    def predict_logits(self, images: Tensor, batch_size: int = 2048) -> Tensor:
        """Return every member's logits for `images`: (members, images, classes)."""
        was_training = self.training
        self.eval()
        device = self.weight1.device
        logits = torch.cat([self(chunk.to(device)) for chunk in images.split(batch_size)], dim=1).cpu()
        self.train(was_training)
        return logits

    def accuracies(self, images: Tensor, labels: Tensor) -> list[float]:
        """Return each member's accuracy on (images, labels)."""
        predicted = self.predict_logits(images).argmax(-1)
        return (predicted == labels[None]).float().mean(1).tolist()


@dataclass
class CohortResult:
    """What `train_cohort` returns: per-member validation accuracy by epoch, and the time taken."""

    objectives: list[Objective]
    seeds: list[int]
    val_accuracy: list[list[float]]  # [epoch][member]
    seconds: float  # training time of the members trained by this call
    loaded: int = 0  # members read back from the store (``train_cohort(store=True)``) instead of trained
    stored_seconds: float = 0.0  # the loaded members' share of the time of the cohort that trained them

    @property
    def final_val_accuracy(self) -> list[float]:
        return self.val_accuracy[-1] if self.val_accuracy else []

    @property
    def trained(self) -> int:
        """How many members this call trained (the others were loaded)."""
        return len(self.objectives) - self.loaded

    @property
    def cost_seconds(self) -> float:
        """What training every member cost, here or before: this call's time plus the loaded members' share."""
        return self.seconds + self.stored_seconds

    def timing(self) -> str:
        """Say where the members' training time went, e.g. '14 trained here in 190 s; 6 loaded (trained before in 86 s)'."""
        parts = [f"{self.trained} trained here in {self.seconds:.0f} s"] if self.trained else []
        if self.loaded:
            parts.append(f"{self.loaded} loaded (trained before in {self.stored_seconds:.0f} s)")
        return "; ".join(parts)

    def as_dict(self) -> dict:
        return {"objectives": [asdict(o) for o in self.objectives], "seeds": self.seeds,
                "val_accuracy": self.val_accuracy, "seconds": self.seconds, "loaded": self.loaded,
                "stored_seconds": self.stored_seconds}


def _member_labels(objectives: Sequence[Objective], labels: Tensor, teachers: Tensor | None, teacher_of: Tensor) -> Tensor:
    teacher_labels = teachers.argmax(-1) if teachers is not None else None  # (teachers, n)
    rows = []
    for k, objective in enumerate(objectives):
        if objective.labels == "teacher":
            rows.append(teacher_labels[teacher_of[k]])
        else:
            rows.append(labels[k] if labels.dim() == 2 else labels)
    return torch.stack(rows)


def train_cohort(
    cohort: MLPCohort,
    train_x: Tensor,
    train_y: Tensor,
    objectives: Sequence[Objective],
    *,
    teacher_logits: Tensor | None = None,
    teacher_of: Sequence[int] | None = None,
    teacher_features: Tensor | None = None,
    subsets: Tensor | None = None,
    val: tuple[Tensor, Tensor] | None = None,
    epochs: int = 20,
    batch_size: int = 128,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    eval_every: int = 0,
    progress: bool = True,
    name: str = "cohort",
    store: bool = False,
) -> CohortResult:
    """Train every member of `cohort` with its own objective, seed and data order; return a CohortResult.

    Same optimiser and schedule as ``kd.train`` (AdamW, one-cycle learning rate), so a
    member trains as ``kd.train`` would train that student alone, up to rounding.
    Labels of -1 mark unlabelled images (only the soft and hint terms learn from them); `train_y` of shape
    (members, images) gives each member its own labels (e.g. a different labelled 1 % per seed).
    `teacher_logits` are one teacher's, shape (images, classes), or several teachers', shape (teachers, images,
    classes), with `teacher_of` naming each member's teacher (an index into the first dimension).
    `teacher_features` (images, width), cached like the logits, are the hint's targets.
    `subsets` (members, m) gives each member its own m training images (indices into train_x), e.g. one
    labelled subset per seed; an epoch is then one pass over m images.
    ``eval_every=k`` records validation accuracy every k epochs (0: at the end only).

    ``store=True`` trains each student once per course run: a member whose recipe (width, seed, objective,
    schedule, and fingerprints of its images, labels and teacher logits) was trained before is loaded from the
    checkpoint folder instead, and the others are trained and saved. A member trains exactly as it would in any
    other cohort (nothing is shared between members), so a loaded student is the one retraining would give,
    to the bit, on the same machine and torch; the file also names the torch version and CPU instruction set.
    """
    members = len(cohort)
    if len(objectives) != members:
        raise ValueError(f"the cohort has {members} members but {len(objectives)} objectives were given: one each")
    n = len(train_x)
    if n == 0:
        raise ValueError("train_x is empty: nothing to train on")
    if train_y.shape[-1] != n or train_y.dim() > 2 or (train_y.dim() == 2 and len(train_y) != members):
        raise ValueError(f"train_y must hold one label per image, shape ({n},), or one row per member, shape "
                         f"({members}, {n}); got {tuple(train_y.shape)}")
    if train_y.dtype != torch.long:
        raise TypeError(f"train_y must hold integer class indices (torch.long), got {train_y.dtype}; use train_y.long()")
    check_labels(train_y.reshape(-1), cohort.num_classes)
    if any(o.needs_teacher for o in objectives):
        if teacher_logits is None:
            raise ValueError("an objective uses the teacher (alpha > 0 or labels='teacher'): pass teacher_logits")
        check_teacher_logits(teacher_logits if teacher_logits.dim() != 3 else teacher_logits[0], n, cohort.num_classes)
    teachers = None if teacher_logits is None else teacher_logits if teacher_logits.dim() == 3 else teacher_logits[None]
    count = 1 if teachers is None else len(teachers)
    if count > 1 and teacher_of is None:
        raise ValueError(f"teacher_logits hold {count} teachers: say which one each member learns from with "
                         f"teacher_of=[one index per member, 0 to {count - 1}]")
    teacher_of = torch.as_tensor([0] * members if teacher_of is None else list(teacher_of), dtype=torch.long)
    if len(teacher_of) != members or ((teacher_of < 0) | (teacher_of >= count)).any():
        raise ValueError(f"teacher_of must give each of the {members} members the index of its teacher (0 to "
                         f"{count - 1}), got {teacher_of.tolist()}")
    featured = [o.describe() for o in objectives if o.feature_terms]
    if featured:
        raise ValueError(f"the cohort cannot train {featured[0]!r}: feature_terms tap named layers of a student and a "
                         "live teacher; train it with kd.train (the cohort's hint is Objective.feature_weight)")
    hinted = any(o.feature_weight > 0 for o in objectives)
    if hinted:
        if teacher_features is None or cohort.regressor is None:
            raise ValueError("an objective has feature_weight > 0: pass teacher_features and build the cohort with "
                             "feature_width=teacher_features.shape[1]")
        if teacher_features.dim() != 2 or len(teacher_features) != n or teacher_features.shape[1] != cohort.regressor[0].shape[2]:
            raise ValueError(f"teacher_features have shape {tuple(teacher_features.shape)} but the cohort needs "
                             f"({n}, {cohort.regressor[0].shape[2]}): one feature vector per training image")
    if subsets is not None:
        if subsets.dim() != 2 or len(subsets) != members or subsets.shape[1] == 0:
            raise ValueError(f"subsets must have shape ({members}, images per member), got {tuple(subsets.shape)}")
        if subsets.min() < 0 or subsets.max() >= n:
            raise ValueError(f"subsets must hold indices into train_x (0 to {n - 1}), got {int(subsets.min())} "
                             f"to {int(subsets.max())}")
    if store:
        return _train_with_store(cohort, train_x, train_y, list(objectives), teachers, teacher_of, subsets, val,
                                 dict(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay),
                                 eval_every, progress, name)
    device = cohort.weight1.device
    flat_x = train_x.reshape(n, -1).to(device)
    labels = _member_labels(objectives, train_y, teachers, teacher_of).to(device)  # (members, n)
    decoupled = [o.decoupled for o in objectives]
    if any(decoupled) and (labels[torch.tensor(decoupled)] == IGNORE_LABEL).any():
        raise ValueError("a decoupled-KD objective needs every training image's class, but its labels contain -1 "
                         "(unlabelled); give it labels='teacher' (the teacher's top-1 class) instead")
    weights = StackedObjectives.of(objectives, device)
    feature_weight = torch.tensor([o.feature_weight for o in objectives], device=device)
    features = teacher_features.to(device).float() if hinted else None
    teacher_log_probs = member_temperature = None
    if bool((weights.alpha > 0).any()):  # softened once per teacher and distinct temperature for the whole run
        logits = teachers.to(device).float()
        temperatures = sorted({o.temperature for o in objectives})
        teacher_log_probs = torch.cat([torch.stack([log_soft_targets(t_logits, t) for t in temperatures])
                                       for t_logits in logits])  # (teachers × temperatures, n, classes)
        member_temperature = (teacher_of.to(device) * len(temperatures) + torch.tensor(
            [temperatures.index(o.temperature) for o in objectives], device=device))[:, None]
    generators = [torch.Generator().manual_seed(seed) for seed in cohort.seeds]
    per_member = n if subsets is None else subsets.shape[1]
    steps_per_epoch = math.ceil(per_member / batch_size)
    member_index = torch.arange(members, device=device)[:, None]
    result = CohortResult(list(objectives), list(cohort.seeds), [], 0.0)
    start = time.perf_counter()
    with TrainingLoop(cohort.parameters(), epochs * steps_per_epoch, lr=lr, weight_decay=weight_decay, name=name,
                      progress=progress) as loop:
        for epoch in range(1, epochs + 1):
            cohort.train()
            orders = torch.stack([torch.cat(list(batch_indices(per_member, batch_size, True, g))) for g in generators])
            if subsets is not None:
                orders = subsets.gather(1, orders)
            orders = orders.to(device)
            for step in range(steps_per_epoch):
                index = orders[:, step * batch_size:(step + 1) * batch_size]  # (members, batch)
                # index_select: the same images as flat_x[index], gathered 3× faster (a tenth of a 20-member step)
                logits, hidden = cohort.forward_with_hidden(flat_x.index_select(0, index.reshape(-1)).view(*index.shape, -1))
                target = None if teacher_log_probs is None else teacher_log_probs[member_temperature, index]
                loss_per_member, _ = objective_loss(logits, labels[member_index, index], weights, target)
                if hinted:
                    regressed = torch.baddbmm(cohort.regressor[1], hidden, cohort.regressor[0])
                    target_features = features.index_select(0, index.reshape(-1)).view(*index.shape, -1)
                    hint = (regressed - target_features).pow(2).mean(dim=(1, 2))
                    loss_per_member = loss_per_member + feature_weight * hint
                loop.step(loss_per_member.sum(), epoch, step)
            if val is not None and (epoch == epochs or (eval_every and epoch % eval_every == 0)):
                result.val_accuracy.append(cohort.accuracies(*val))
    result.seconds = time.perf_counter() - start
    cohort.eval()
    return result


STORE_VERSION = 1  # raise when train_cohort's arithmetic changes, so stored students are retrained


def _evaluated_epochs(epochs: int, eval_every: int) -> list[int]:
    return [epoch for epoch in range(1, epochs + 1) if epoch == epochs or (eval_every and epoch % eval_every == 0)]


def _train_with_store(cohort, train_x, train_y, objectives, teachers, teacher_of, subsets, val, schedule, eval_every,
                      progress, name) -> CohortResult:
    """``train_cohort(store=True)``: load the members trained before, train the rest as one smaller cohort, save them."""
    if cohort.regressor is not None:
        raise ValueError("store=True keeps plain MLP students; a cohort with hint regressors (feature_width > 0) "
                         "draws them from one shared random stream, so its members are not independent: train it "
                         "without store")
    environment = computing_environment()
    images = fingerprint(train_x)
    shared_labels = fingerprint(train_y) if train_y.dim() == 1 else None  # else one row of labels per member
    teacher_prints = {}
    keys = []
    for k, objective in enumerate(objectives):
        labels = shared_labels or fingerprint(train_y[k])
        teacher = None
        if objective.needs_teacher:
            index = int(teacher_of[k])
            teacher = teacher_prints.setdefault(index, fingerprint(teachers[index]))
        recipe = {"version": STORE_VERSION, "architecture": "StudentMLP", "hidden": cohort.hidden,
                  "num_classes": cohort.num_classes, "seed": cohort.seeds[k], "objective": asdict(objective), **schedule,
                  "images": images, "labels": labels, "teacher_logits": teacher,
                  "subset": None if subsets is None else fingerprint(subsets[k]), **environment}
        keys.append(fingerprint(recipe))
    evaluation = None if val is None else [fingerprint(*val), _evaluated_epochs(schedule["epochs"], eval_every)]
    parameters = dict(cohort.named_parameters())
    stored, missing = {}, []
    for k, key in enumerate(keys):
        path = store_path("cohort", key)
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None
        except Exception:  # an unreadable file is trained again and overwritten
            entry = None
        if entry is not None and (evaluation is None or entry["evaluation"] == evaluation):
            stored[k] = entry
        else:
            missing.append(k)
    result = CohortResult(list(objectives), list(cohort.seeds), [], 0.0, loaded=len(stored),
                          stored_seconds=sum(entry["seconds"] for entry in stored.values()))
    if stored:
        folder = config.relative_path(store_path("cohort", "").parent)
        print(f"{name}: {len(stored)} of {len(cohort)} students loaded from {folder} (trained before with the same "
              f"recipe, seed, images and teacher); "
              + (f"training the other {len(missing)}" if missing else "nothing to train"))
    if missing:
        part = MLPCohort(cohort.hidden, [cohort.seeds[k] for k in missing], cohort.num_classes)
        with torch.no_grad():
            for key, parameter in part.named_parameters():
                parameter.copy_(parameters[key][missing])
        part.to(cohort.weight1.device)
        trained = train_cohort(part, train_x, train_y if train_y.dim() == 1 else train_y[missing],
                               [objectives[k] for k in missing],
                               teacher_logits=teachers, teacher_of=[int(teacher_of[k]) for k in missing],
                               subsets=None if subsets is None else subsets[missing], val=val,
                               eval_every=eval_every, progress=progress, name=name, **schedule)
        result.seconds = trained.seconds
        part_parameters = dict(part.named_parameters())
        for position, k in enumerate(missing):
            state = {key: part_parameters[key][position].detach().cpu().clone() for key in parameters}
            history = [row[position] for row in trained.val_accuracy]
            with config.atomic_write(store_path("cohort", keys[k])) as file:
                torch.save({"state": state, "evaluation": evaluation, "val_accuracy": history,
                            "seconds": trained.seconds / len(missing), **environment}, file)
            stored[k] = {"state": state, "val_accuracy": history}
    with torch.no_grad():
        for k, entry in stored.items():
            for key, parameter in parameters.items():
                parameter[k].copy_(entry["state"][key])
    if val is not None:
        result.val_accuracy = [[stored[k]["val_accuracy"][row] for k in range(len(cohort))]
                               for row in range(len(evaluation[1]))]
    cohort.eval()
    return result


@dataclass
class MethodResults:
    """What `train_methods` returns: accuracy in % per split, method and seed (in seed order), and the cohort."""

    seeds: list[int]
    accuracy: dict[str, dict[str, list[float]]]  # split -> method -> one accuracy (%) per seed
    cohort: MLPCohort
    result: CohortResult

    def of(self, method: str, split: str = "test") -> list[float]:
        """Return the accuracies (%) of `method` on `split`, one per seed."""
        return self.accuracy[split][method]


def train_methods(
    width: int,
    seeds: Sequence[int],
    methods: dict[str, Objective],
    train_x: Tensor,
    train_y: Tensor,
    *,
    teacher_logits: Tensor | None = None,
    evaluate: dict[str, tuple[Tensor, Tensor]],
    subset_size: int | None = None,
    epochs: int,
    batch_size: int,
    val: tuple[Tensor, Tensor] | None = None,
    eval_every: int = 0,
    progress: bool = False,
    name: str = "cohort",
    store: bool = False,
) -> MethodResults:
    """Train MLP(`width`) from every seed under every method as one cohort; return each one's accuracy per split.

    The students of a seed share their initial weights and data order, so a method's effect is a paired, per-seed
    difference (``kd.compare``). With `subset_size`, every student of a seed trains on that seed's class-balanced
    subset of `subset_size` images (``kd.labelled_subset``): the same images for every method.
    ``store=True`` loads the students trained before with the same recipe (see ``train_cohort``).
    """
    seeds = check_seeds(seeds)
    members = [(method, seed) for method in methods for seed in seeds]
    cohort = MLPCohort(width, [seed for _, seed in members])
    subsets = None
    if subset_size is not None:
        labels = train_y if train_y.dim() == 1 else train_y[0]
        per_seed = {seed: labelled_subset(labels, per_class=subset_size // NUM_CLASSES, seed=seed) for seed in seeds}
        subsets = torch.stack([per_seed[seed] for _, seed in members])
    result = train_cohort(cohort, train_x, train_y, [methods[m] for m, _ in members], teacher_logits=teacher_logits,
                          subsets=subsets, val=val, epochs=epochs, batch_size=batch_size, eval_every=eval_every,
                          progress=progress, name=name, store=store)
    accuracy = {}
    for split, (images, labels) in evaluate.items():
        values = [100 * a for a in cohort.accuracies(images, labels)]
        accuracy[split] = {method: values[i * len(seeds):(i + 1) * len(seeds)] for i, method in enumerate(methods)}
    return MethodResults(seeds, accuracy, cohort, result)
