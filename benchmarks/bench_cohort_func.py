"""Benchmark: the cohort's hand-stacked MLPs (``kd.MLPCohort``, ``torch.baddbmm``) against PyTorch's recipe for
training many small models as one (``torch.func.stack_module_state`` + ``vmap`` over ``functional_call``).

    .venv/bin/python benchmarks/bench_cohort_func.py [--members 20] [--steps 300] [--rounds 3]

Both train the same students (StudentMLP(128), notebook 03's width and batch of 128, one batch of their own
per member, KD at T = 2, α = 0.5 through ``kd.objective_loss``, AdamW): the script checks that their losses agree
after the timed steps, then prints the median seconds per step of each over alternating rounds, so that a slow
spell of the machine does not land on one of them. The course keeps whichever is faster on this CPU.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch.func import functional_call, stack_module_state, vmap

import kd_utils as kd
from kd_utils.losses import StackedObjectives, log_soft_targets


def batches(members: int, steps: int, batch: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(steps, members, batch, 784, generator=generator)
    labels = torch.randint(0, 10, (steps, members, batch), generator=generator)
    teacher = log_soft_targets(3 * torch.randn(steps, members, batch, 10, generator=generator), 2.0)
    return images, labels, teacher


def run_cohort(cohort: kd.MLPCohort, data, weights) -> float:
    optimizer = torch.optim.AdamW(cohort.parameters(), lr=3e-3, weight_decay=1e-4)
    start = time.perf_counter()
    for images, labels, teacher in zip(*data):
        logits, _ = cohort.forward_with_hidden(images)
        loss = kd.objective_loss(logits, labels, weights, teacher)[0].sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / len(data[0]), loss.item()


def run_vmap(models: list[torch.nn.Module], data, weights) -> float:
    parameters, buffers = stack_module_state(models)
    parameters = {name: value.detach().requires_grad_() for name, value in parameters.items()}
    template = copy.deepcopy(models[0]).to("meta")

    def forward(member_parameters, member_buffers, images):
        return functional_call(template, (member_parameters, member_buffers), (images,))

    optimizer = torch.optim.AdamW(list(parameters.values()), lr=3e-3, weight_decay=1e-4)
    start = time.perf_counter()
    for images, labels, teacher in zip(*data):
        logits = vmap(forward)(parameters, buffers, images)
        loss = kd.objective_loss(logits, labels, weights, teacher)[0].sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / len(data[0]), loss.item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=20, help="students trained as one (notebook 03: 20)")
    parser.add_argument("--steps", type=int, default=300, help="timed steps per variant and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{kd.describe_run()}; {args.members} StudentMLP(128) members, batch 128, {args.steps} steps per round")
    data = batches(args.members, args.steps, 128)
    weights = StackedObjectives.of([kd.Objective(alpha=0.5, temperature=2.0)] * args.members)
    seeds = list(range(args.members))
    times: dict[str, list[float]] = {"MLPCohort (baddbmm)": [], "torch.func (vmap)": []}
    for _ in range(args.rounds):
        cohort = kd.MLPCohort(128, seeds)
        models = [cohort.member(k).train() for k in range(args.members)]  # the same initial weights
        seconds, cohort_loss = run_cohort(cohort, data, weights)
        times["MLPCohort (baddbmm)"].append(seconds)
        seconds, vmap_loss = run_vmap(models, data, weights)
        times["torch.func (vmap)"].append(seconds)
        assert abs(cohort_loss - vmap_loss) < 1e-3 * abs(cohort_loss), (cohort_loss, vmap_loss)
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, median in medians.items():
        print(f"{name:<22} {1000 * median:7.2f} ms per step (median of {args.rounds} rounds)")
    fastest = min(medians, key=medians.get)
    other = max(medians, key=medians.get)
    print(f"faster on this CPU: {fastest}, {medians[other] / medians[fastest]:.2f}× the other")


if __name__ == "__main__":
    main()
