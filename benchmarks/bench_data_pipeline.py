"""Benchmark: one training epoch over in-memory tensors against the usual DataLoader pipeline.

Same student (StudentCNN, width 8, channels-last as kd.train runs it on a CPU), same batch
size (64), same optimiser; only the data path differs. The baseline is the tutorial pipeline: torchvision.datasets.FashionMNIST
with ToTensor() + Normalize, fed by a DataLoader (per-sample PIL conversion in Python).

    .venv/bin/python benchmarks/bench_data_pipeline.py [--epochs 1] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import FashionMNIST

import kd_utils as kd


def run_epoch(model: nn.Module, batches, optimizer) -> int:
    model.train()
    seen = 0
    for images, labels in batches:
        images = images.contiguous(memory_format=torch.channels_last)  # the layout kd.train uses for a CNN on a CPU
        loss = nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seen += len(labels)
    return seen


def timed(label: str, make_batches, batch_size: int, epochs: int) -> float:
    kd.set_seed(0)
    model = kd.StudentCNN(width=8).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    best = float("inf")
    for _ in range(epochs):
        start = time.perf_counter()
        seen = run_epoch(model, make_batches(), optimizer)
        best = min(best, time.perf_counter() - start)
    print(f"{label:<46} {best:6.1f} s/epoch  ({seen / best:,.0f} images/s, batch {batch_size})", flush=True)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=1, help="epochs per pipeline; the fastest one is reported")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    root = kd.data.ensure_fashion_mnist()
    data = kd.load_fashion_mnist(smoke=False)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {len(data.train_y):,} training images")

    tutorial = FashionMNIST(str(root), train=True, download=False,
                            transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.2860,), (0.3530,))]))
    train_subset = torch.utils.data.Subset(tutorial, range(len(data.train_y)))  # same number of images

    def dataloader_batches():
        return DataLoader(train_subset, batch_size=args.batch_size, shuffle=True, generator=torch.Generator().manual_seed(0))

    def tensor_batches():
        return kd.iterate_batches(data.train_x, data.train_y, args.batch_size, generator=torch.Generator().manual_seed(0))

    baseline = timed("DataLoader + ToTensor() + Normalize", dataloader_batches, args.batch_size, args.epochs)
    ours = timed("kd_utils in-memory tensors, indexed batches", tensor_batches, args.batch_size, args.epochs)
    print(f"speed-up: {baseline / ours:.1f}x (target: at least 3x)")


if __name__ == "__main__":
    main()
