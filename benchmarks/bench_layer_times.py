"""Benchmark: ``kd.deploy.layer_times`` (forward hooks reading ``time.perf_counter``) against per-layer times
read from ``torch.profiler``, on notebook 07's CNNs at batch 256 on one CPU thread.

    .venv/bin/python benchmarks/bench_layer_times.py

Two profiler-based versions of ``layer_times`` are measured, each written out below as it would replace the
hand-written one (same checks, same layers, same median per layer):

- ``profiler_layer_times``: no hooks at all; ``torch.profiler.profile(with_stack=True)`` records an
  ``nn.Module: <Class>_<k>`` event per module call (``with_modules=True`` is TorchScript-only and records nothing
  in eager mode), which is mapped back to the module's name.
- ``record_function_layer_times``: hooks open and close a ``torch.profiler.record_function(name)`` range per
  layer, and the profiler times the ranges instead of ``perf_counter``.

For ``kd.TeacherCNN()`` and ``kd.StudentCNN()``, float32 and static int8 (``kd.deploy.quantize_static_int8``, as
notebook 07 deploys its CNNs; PyTorch has no dynamic int8 convolution), it prints each layer's milliseconds by
each method and the method/hooks ratio; then whether the methods name the same layers in the same forward order,
the sum of the layers against an uninstrumented forward pass, the median time a method adds to a layer, the cost
of one timed forward pass (instrumentation, profiler start/stop and event parsing included) against an
uninstrumented one, and each implementation's lines of code (docstring, comments and blank lines left out); and
a one-line verdict computed from those numbers.

Methods run interleaved over a few rounds and each figure is the least over rounds (the CPU may be shared); the
hooks run twice per round, and "hooks again" against "hooks" is the noise floor the profiler methods are held to.
"""

from __future__ import annotations

import ast
import inspect
import os
import statistics
import textwrap
import time
import warnings
from collections import Counter
from typing import Any

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # keep the profiler's own start/stop log lines off the table

import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402
from torch.profiler import ProfilerActivity, profile, record_function  # noqa: E402

import kd_utils as kd  # noqa: E402

BATCH, THREADS, REPEATS, ROUNDS = 256, 1, 10, 5
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
AGREE = 0.15  # a method agrees if each layer over 1% of the pass is within ±15% of the hooks (or their own noise)


@torch.inference_mode()
def profiler_layer_times(model: nn.Module, images: Tensor, repeats: int = 20, threads: int = 1) -> list[dict[str, Any]]:
    """kd.deploy.layer_times from torch.profiler's nn.Module events (with_stack=True), with no hooks."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"layer_times needs a torch.nn.Module, got {type(model).__name__}")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    model.eval()
    layers, per_class = {}, Counter()  # the profiler names a module "<Class>_<k>": k counts that class's modules
    for name, layer in model.named_modules():  # in first-call order, which this mapping assumes
        cls = type(layer).__name__
        layers[f"nn.Module: {cls}_{per_class[cls]}"] = (name, layer)
        per_class[cls] += 1
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model(images)  # warm-up: first calls allocate and pick kernels
        with profile(activities=[ProfilerActivity.CPU], with_stack=True) as profiler:
            for _ in range(repeats):
                model(images)
    finally:
        torch.set_num_threads(previous_threads)
    samples: dict[str, list[float]] = {}
    for event in profiler.events():
        name, layer = layers.get(event.name, ("", None))
        if name and not isinstance(layer, CONTAINERS) and "_packed_params" not in name:
            samples.setdefault(name, []).append(event.cpu_time_total / 1e6)
    kinds = {name: layer._get_name() for name, layer in layers.values()}
    return [{"layer": name, "type": kinds[name], "seconds": statistics.median(values)} for name, values in samples.items()]


@torch.inference_mode()
def record_function_layer_times(model: nn.Module, images: Tensor, repeats: int = 20,
                                threads: int = 1) -> list[dict[str, Any]]:
    """kd.deploy.layer_times with hooks that open a torch.profiler.record_function range per layer."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"layer_times needs a torch.nn.Module, got {type(model).__name__}")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    model.eval()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    ranges: dict[str, record_function] = {}
    kinds: dict[str, str] = {}
    handles = []
    for name, layer in model.named_modules():
        if not name or isinstance(layer, CONTAINERS) or "_packed_params" in name:
            continue
        kinds[name] = layer._get_name()
        handles.append(layer.register_forward_pre_hook(
            lambda _m, _i, name=name: ranges.__setitem__(name, record_function(name).__enter__())))
        handles.append(layer.register_forward_hook(lambda _m, _i, _o, name=name: ranges[name].__exit__(None, None, None)))
    try:
        model(images)  # warm-up: first calls allocate and pick kernels
        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            for _ in range(repeats):
                model(images)
    finally:
        for handle in handles:
            handle.remove()
        torch.set_num_threads(previous_threads)
    samples: dict[str, list[float]] = {}
    for event in profiler.events():
        if event.name in kinds:
            samples.setdefault(event.name, []).append(event.cpu_time_total / 1e6)
    return [{"layer": name, "type": kinds[name], "seconds": statistics.median(values)} for name, values in samples.items()]


METHODS = {"hooks": kd.deploy.layer_times, "hooks again": kd.deploy.layer_times,  # again: the noise floor
           "profiler": profiler_layer_times, "record_fn": record_function_layer_times}


def code_lines(function: Any) -> int:
    """Lines of a function's code: its docstring, comments and blank lines left out."""
    source = textwrap.dedent(inspect.getsource(function))
    node = ast.parse(source).body[0]
    first = node.body[0]
    docstring = set(range(first.lineno, first.end_lineno + 1)) if isinstance(first, ast.Expr) else set()
    return sum(1 for number, line in enumerate(source.splitlines(), 1)
               if number not in docstring and line.strip() and not line.strip().startswith("#"))


@torch.inference_mode()
def plain_forward(model: nn.Module, images: Tensor, repeats: int) -> float:
    """Median seconds of one forward pass, uninstrumented (after one warm-up)."""
    model(images)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(images)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(model: nn.Module, images: Tensor) -> dict[str, Any]:
    """Per-layer seconds and per-forward cost of each method and of the plain forward: the least of interleaved rounds.

    The least, not the median: other processes on a shared CPU only ever add time.
    """
    layers: dict[str, dict[str, list[float]]] = {method: {} for method in METHODS}
    orders: dict[str, list[tuple[str, str]]] = {}
    cost: dict[str, list[float]] = {method: [] for method in ("plain", *METHODS)}
    for _ in range(ROUNDS):
        torch.set_num_threads(THREADS)
        cost["plain"].append(plain_forward(model, images, REPEATS))
        for method, function in METHODS.items():
            start = time.perf_counter()
            rows = function(model, images, repeats=REPEATS, threads=THREADS)
            cost[method].append((time.perf_counter() - start) / (REPEATS + 1))  # warm-up + repeats forward passes
            orders[method] = [(row["layer"], row["type"]) for row in rows]
            for row in rows:
                layers[method].setdefault(row["layer"], []).append(row["seconds"])
    return {
        "orders": orders,
        "layers": {method: {name: min(v) for name, v in rows.items()} for method, rows in layers.items()},
        "cost": {method: min(values) for method, values in cost.items()},
    }


def main() -> None:
    warnings.filterwarnings("ignore")
    torch.set_num_threads(THREADS)
    kd.set_seed(0)
    images = torch.randn(BATCH, 1, 28, 28)
    calibration = torch.randn(512, 1, 28, 28)
    models = {}
    for architecture in (kd.TeacherCNN, kd.StudentCNN):
        model = architecture().eval()
        models[f"{architecture.__name__} float32"] = model
        models[f"{architecture.__name__} int8"] = kd.deploy.quantize_static_int8(model, calibration)
    lines = {method: code_lines(function) for method, function in METHODS.items() if method != "hooks again"}
    print(f"torch {torch.__version__}, batch {BATCH}, {THREADS} thread, {REPEATS} timed passes × {ROUNDS} rounds, "
          f"int8 engine {torch.backends.quantized.engine}\n")

    summary = []
    for label, model in models.items():
        result = measure(model, images)
        plain, hooks = result["cost"]["plain"], result["layers"]["hooks"]
        print(f"{label}: per-layer ms (median of {REPEATS} passes, least of {ROUNDS} rounds), ratio = method / hooks")
        print(f"  {'layer':<22}{'type':<20}{'hooks':>8}" + "".join(f"{m:>12}{'ratio':>7}" for m in METHODS if m != "hooks"))
        for name, kind in result["orders"]["hooks"]:
            cells = [f"  {name:<22}{kind:<20}{1e3 * hooks[name]:8.3f}"]
            for method in METHODS:
                seconds = result["layers"][method].get(name)
                if method != "hooks":
                    cells.append(f"{1e3 * seconds:12.3f}{seconds / hooks[name]:7.2f}" if seconds else f"{'—':>12}{'':>7}")
            print("".join(cells))
        row = {"model": label, "plain": plain}
        for method in METHODS:
            row[f"{method} same"] = result["orders"][method] == result["orders"]["hooks"]
            row[f"{method} sum"] = sum(result["layers"][method].values()) / plain
            row[f"{method} cost"] = result["cost"][method] / plain
            big = [name for name, seconds in hooks.items() if seconds >= 0.01 * plain]
            ratios = [result["layers"][method].get(name, 0.0) / hooks[name] for name in big]
            row[f"{method} worst"] = max(ratios, key=lambda r: abs(r - 1)) if ratios else float("nan")
            row[f"{method} extra"] = statistics.median(result["layers"][method].get(name, 0.0) - seconds
                                                      for name, seconds in hooks.items())
        summary.append(row)
        print()

    print(f"{'model':<20}{'plain ms':>9}  {'method':<10}{'same layers+order':>18}{'Σlayers/plain':>15}"
          f"{'worst ratio':>13}{'µs/layer added':>16}{'cost/plain':>12}")
    for row in summary:
        for m in METHODS:
            print(f"{row['model']:<20}{1e3 * row['plain']:9.2f}  {m:<10}{'yes' if row[f'{m} same'] else 'NO':>18}"
                  f"{row[f'{m} sum']:15.2f}{row[f'{m} worst']:13.2f}{1e6 * row[f'{m} extra']:16.1f}"
                  f"{row[f'{m} cost']:12.2f}")
    print("lines of code (no docstring/comments/blanks): " + ", ".join(f"{m} {n}" for m, n in lines.items()))

    def worst(method: str) -> float:
        return max((row[f"{method} worst"] for row in summary), key=lambda r: abs(r - 1))

    tolerance = max(AGREE, abs(worst("hooks again") - 1))
    verdicts = []
    for method in ("profiler", "record_fn"):
        same = all(row[f"{method} same"] for row in summary)
        cost = statistics.median(row[f"{method} cost"] / row["hooks cost"] for row in summary)
        extra = statistics.median(row[f"{method} extra"] for row in summary)
        fewer = lines[method] < lines["hooks"]
        serves = same and abs(worst(method) - 1) <= tolerance and cost <= 1 + AGREE and fewer
        verdicts.append(f"{method} {'serves' if serves else 'does not serve'} (same layers and order: {same}, worst "
                        f"ratio {worst(method):.2f} vs tolerance ±{tolerance:.2f}, {1e6 * extra:+.0f} µs per layer and a "
                        f"timed pass {cost:.2f}× the hooks', "
                        f"{lines[method]} vs {lines['hooks']} lines)")
    print("conclusion: " + "; ".join(verdicts) + ("; keep the hooks" if all("does not" in v for v in verdicts)
                                                   else "; switch"))


if __name__ == "__main__":
    main()
