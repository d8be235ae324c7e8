"""Do two checkouts of kd_utils train the same students, to the bit? The check behind a refactor of the engines.

    .venv/bin/python scripts/same_students.py /path/to/old/checkout [/path/to/new/checkout]

Trains small students through every path of both engines (kd.train: scratch, cached and live KD, default T,
unlabelled images, α = 1, hint, attention, FitNets, augmentation; the cohort: 8 objectives and 2 teachers, a
hinted cohort, per-member subsets and labels, train_methods) and of notebook 08's language-model engine (9
objectives) on synthetic data, one thread, with each checkout's kd_utils in its own process, and prints which
students' weights hash the same. Run on one machine: another CPU instruction set changes the bits anyway.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

TRAIN = r'''
import hashlib, json, sys
sys.path.insert(0, sys.argv[1])
import torch
torch.set_num_threads(1)
import kd_utils as kd
from kd_utils import data as kd_data, lm, lm_train as lt, models

def digest(model):
    hasher = hashlib.sha256()
    for value in model.state_dict().values():
        hasher.update(value.detach().float().reshape(-1).numpy().tobytes())
    return hasher.hexdigest()[:16]

g = torch.Generator().manual_seed(0)
N = 640
x, y = torch.randn(N, 1, 28, 28, generator=g), torch.randint(0, 10, (N,), generator=g)
t1, t2 = 3 * torch.randn(N, 10, generator=g), 3 * torch.randn(N, 10, generator=g)
unlabelled = y.clone(); unlabelled[::3] = -1
out = {}
kw = dict(epochs=2, batch_size=64, progress=False, verbose=False, seed=3)
def student(name, **settings):
    kd.set_seed(0)
    model = models.build_model(name, **settings)
    return model
def run(name, model, *args, **settings):
    kd.train(model, *args, **kw, **settings); out[name] = digest(model)
run("train scratch CNN", student("StudentCNN", width=8), x, y)
run("train cached KD", student("StudentCNN", width=8), x, y, teacher_logits=t1, temperature=2.0, alpha=0.5)
run("train default T", student("StudentMLP", hidden=32), x, y, teacher_logits=t1)
run("train unlabelled", student("StudentMLP", hidden=32), x, unlabelled, teacher_logits=t1, temperature=2.0, alpha=0.5)
run("train alpha 1", student("StudentMLP", hidden=32), x, unlabelled, teacher_logits=t1, temperature=4.0, alpha=1.0)
kd.set_seed(5); teacher = models.build_model("TeacherCNN").eval()
run("train hint", student("StudentCNN", width=8), x, y, teacher=teacher, temperature=2.0, alpha=0.5,
    feature_terms=[kd.FeatureTerm(kd.HintLoss(16, 48), "block2", "block2", 1.0)])
run("train attention", student("StudentCNN", width=8), x, y, teacher=teacher, temperature=2.0, alpha=0.5,
    feature_terms=[kd.FeatureTerm(kd.AttentionTransferLoss(), "block2", "block2", 2.0)])
run("train augment", student("StudentCNN", width=8), x, y, teacher=teacher, temperature=2.0, alpha=0.5,
    augment=kd_data.random_shift)
model = student("StudentCNN", width=8)
kd.train_fitnets(model, teacher, x, y, kd.FeatureTerm(kd.HintLoss(16, 48), "block2", "block2", 1.0), hint_epochs=1,
                 temperature=2.0, alpha=0.5, **kw)
out["FitNets"] = digest(model)
objectives = [kd.Objective(), kd.Objective(alpha=0.5, temperature=2.0), kd.Objective(alpha=0.9, temperature=4.0),
              kd.Objective(smoothing=0.1), kd.Objective(labels="teacher"),
              kd.Objective(alpha=1.0, temperature=4.0, tckd_weight=1.0, nckd_weight=8.0),
              kd.Objective(alpha=1.0, temperature=1.0), kd.Objective(alpha=0.3, temperature=3.0, smoothing=0.05)]
cohort = kd.MLPCohort(32, list(range(len(objectives))))
kd.train_cohort(cohort, x, y, objectives, teacher_logits=torch.stack([t1, t2]), teacher_of=[0, 1, 0, 0, 1, 0, 1, 0],
                val=(x[:200], y[:200]), epochs=2, batch_size=64, progress=False, eval_every=1)
out["cohort of 8 objectives"] = digest(cohort)
cohort = kd.MLPCohort(32, [0, 1], feature_width=48)
kd.train_cohort(cohort, x, y, [kd.Objective(alpha=0.5, temperature=2.0, feature_weight=3.0), kd.Objective(feature_weight=1.0)],
                teacher_logits=t1, teacher_features=torch.randn(N, 48, generator=g), epochs=2, batch_size=64, progress=False)
out["hinted cohort"] = digest(cohort)
cohort = kd.MLPCohort(16, [0, 1])
kd.train_cohort(cohort, x, torch.stack([unlabelled, y]), [kd.Objective(alpha=0.5, temperature=2.0),
                kd.Objective(alpha=0.5, temperature=2.0, smoothing=0.1)], teacher_logits=t1,
                subsets=torch.stack([torch.arange(0, 300), torch.arange(100, 400)]), epochs=2, batch_size=64, progress=False)
out["cohort with subsets"] = digest(cohort)
methods = kd.train_methods(16, [0, 1], {"s": kd.Objective(), "kd": kd.Objective(alpha=0.5, temperature=2.0)}, x, y,
                           teacher_logits=t1, evaluate={"val": (x[:200], y[:200])}, subset_size=100, epochs=2, batch_size=32)
out["train_methods"] = digest(methods.cohort)
config = lm.GPTConfig(vocab_size=11, context=12, layers=2, width=16, heads=2)
tokens = torch.randint(0, 11, (4000,), generator=g)
torch.manual_seed(0); lm_teacher = lm.TinyGPT(config).eval()
schedule = lt.LMSchedule(steps=30, batch_size=8, warmup=5)
windows = lt.training_windows(tokens, config.context, schedule, seed=0)
for objective in [lt.LMObjective("scratch"), lt.LMObjective("label smoothing", label_smoothing=0.1),
                  lt.LMObjective("forward KL", hard_weight=0.0, soft_weight=1.0),
                  lt.LMObjective("forward KL + CE, T=2", hard_weight=0.5, soft_weight=1.0, temperature=2.0),
                  lt.LMObjective("reverse KL", hard_weight=0.0, soft_weight=1.0, beta=1.0),
                  lt.LMObjective("JSD 0.5", hard_weight=0.0, soft_weight=1.0, beta=0.5),
                  lt.LMObjective("on-policy 0.5", hard_weight=0.0, soft_weight=1.0, lmbda=0.5),
                  lt.LMObjective("on-policy 1 + CE", hard_weight=0.5, soft_weight=1.0, lmbda=1.0),
                  lt.LMObjective("top-4 cache", hard_weight=0.0, soft_weight=1.0, top_k=4)]:
    cache = lt.TeacherCache(lm_teacher, windows, objective.temperature) if objective.soft_weight > 0 else None
    torch.manual_seed(1); lm_student = lm.TinyGPT(config)
    lt.train_lm(lm_student, windows, objective, schedule, seed=0, teacher=lm_teacher, cache=cache, progress=False)
    out[f"LM {objective.name}"] = digest(lm_student)
print(json.dumps(out))
'''


def students_of(checkout: Path) -> dict[str, str]:
    result = subprocess.run([sys.executable, "-c", TRAIN, str(checkout)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"training with {checkout} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print(__doc__, file=sys.stderr)
        return 2
    old = Path(argv[0]).resolve()
    new = Path(argv[1]).resolve() if len(argv) > 1 else Path(__file__).resolve().parent.parent
    before, after = students_of(old), students_of(new)
    for name in before:
        print(f"{'same' if before[name] == after.get(name) else 'DIFFERENT':<10} {name}")
    same = sum(before[name] == after.get(name) for name in before)
    print(f"{same} of {len(before)} students trained to the same bits")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
