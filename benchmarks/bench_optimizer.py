"""Benchmark: what the optimiser costs in the course's training steps, and what PyTorch's fused AdamW would save.

    .venv/bin/python benchmarks/bench_optimizer.py [--steps 60] [--rounds 3]

`kd_utils`' one loop core (``kd.train.TrainingLoop``) steps ``torch.optim.AdamW`` with its default
implementation (``foreach``). For each model the course trains (notebook 03's and 06's cohorts of 20, 9 and 3
``StudentMLP(128)`` students, 01's ``TeacherCNN``, 04's ``StudentCNN``; batch 128, random images), the script
times a whole step (forward, cross-entropy, backward, optimiser) and the optimiser alone, with the default and
with ``fused=True``, in alternating rounds (median), and checks whether the two give the same weights to the bit
after the timed steps. Fused AdamW reorders the update's arithmetic: its weights differ in the last bits, so
switching would retrain every student of the course a little differently (a change of numbers to re-measure,
like a change of machine), which is why the course has not switched.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import kd_utils as kd


def timed_steps(model_factory, make_batch, fused: bool, steps: int) -> tuple[float, float, list[torch.Tensor]]:
    """Return (seconds per step, optimiser seconds per step, final weights) over `steps` steps after 5 warm-up steps."""
    torch.manual_seed(0)
    model = model_factory()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4, fused=True if fused else None)
    generator = torch.Generator().manual_seed(1)
    total = optimizer_seconds = 0.0
    for index in range(steps + 5):
        images, labels = make_batch(generator)
        start = time.perf_counter()
        logits = model(images)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        middle = time.perf_counter()
        optimizer.step()
        end = time.perf_counter()
        if index >= 5:
            total, optimizer_seconds = total + end - start, optimizer_seconds + end - middle
    return total / steps, optimizer_seconds / steps, [p.detach().clone() for p in model.parameters()]


def cohort_case(members: int):
    def batch(generator):
        return torch.rand(members, 128, 784, generator=generator), torch.randint(0, 10, (members, 128), generator=generator)
    return f"cohort of {members} MLP(128)", lambda: kd.MLPCohort(128, list(range(members))), batch


def cnn_case(name: str, factory):
    def batch(generator):
        return torch.rand(128, 1, 28, 28, generator=generator), torch.randint(0, 10, (128,), generator=generator)
    return name, factory, batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(kd.describe_run())
    cases = [cohort_case(20), cohort_case(9), cohort_case(3), cnn_case("TeacherCNN (01)", kd.TeacherCNN),
             cnn_case("StudentCNN (04)", kd.StudentCNN)]
    print(f"{'model':26}{'parameters':>11}  {'step ms':>8} {'of it AdamW':>12}  {'fused: step':>12} {'AdamW':>7}  "
          f"{'step saved':>10}  same weights")
    for name, factory, batch in cases:
        steps = args.steps if "cohort" in name else max(10, args.steps // 3)
        runs = {False: [], True: []}
        weights = {}
        for _ in range(args.rounds):
            for fused in (False, True):
                step, optimizer, weights[fused] = timed_steps(factory, batch, fused, steps)
                runs[fused].append((step, optimizer))
        median = {fused: [statistics.median(values) * 1e3 for values in zip(*rows)] for fused, rows in runs.items()}
        same = all(torch.equal(a, b) for a, b in zip(weights[False], weights[True]))
        parameters = kd.count_parameters(factory())
        print(f"{name:26}{parameters:>11,}  {median[False][0]:8.2f} {median[False][1]:12.2f}  {median[True][0]:12.2f} "
              f"{median[True][1]:7.2f}  {1 - median[True][0] / median[False][0]:10.0%}  {'yes' if same else 'no'}")


if __name__ == "__main__":
    main()
