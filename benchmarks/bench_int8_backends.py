"""Benchmark: notebook 07's int8 MLP through ``torch.ao.quantization`` (what ``kd.deploy`` wraps, deprecated
upstream) against its successor, torchao's ``Int8DynamicActivationInt8WeightConfig``, on one CPU thread.

    .venv/bin/pip install --no-deps --target /tmp/torchao torchao==0.18.0   # not a course dependency
    PYTHONPATH=/tmp/torchao .venv/bin/python benchmarks/bench_int8_backends.py

Prints each variant's largest logit change against float32 and its median time per batch at batch 1 and 256.
``kd.deploy`` keeps whichever int8 path is faster on a learner's CPU (eager mode, no torch.compile).
"""

from __future__ import annotations

import copy
import statistics
import time
import warnings

import torch

import kd_utils as kd


def seconds_per_batch(model: torch.nn.Module, batch: int, repeats: int) -> float:
    images = torch.randn(batch, 1, 28, 28)
    with torch.inference_mode():
        for _ in range(20):
            model(images)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(repeats):
                model(images)
            times.append((time.perf_counter() - start) / repeats)
    return statistics.median(times)


def main() -> None:
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    kd.set_seed(0)
    variants = {"float32": kd.StudentMLP(hidden=128).eval()}
    variants["torch.ao dynamic int8 (kd.deploy)"] = kd.deploy.quantize_dynamic_int8(copy.deepcopy(variants["float32"]))
    try:
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
    except ImportError:
        print("torchao is not installed: see this file's docstring; timing the other variants only")
    else:
        model = copy.deepcopy(variants["float32"])
        quantize_(model, Int8DynamicActivationInt8WeightConfig())
        variants["torchao int8 (dynamic activations)"] = model
    images = torch.randn(256, 1, 28, 28)
    with torch.inference_mode():
        reference = variants["float32"](images)
        for name, model in variants.items():
            change = (model(images) - reference).abs().max().item()
            print(f"{name:<36} batch 1: {1e6 * seconds_per_batch(model, 1, 500):8.1f} µs   batch 256: "
                  f"{1e6 * seconds_per_batch(model, 256, 50):9.1f} µs   max |logit change| {change:.4f}")


if __name__ == "__main__":
    main()
