"""From a distilled student to a deployed one: int8 quantization, ONNX export, timing, and a torchrun launcher.

- ``quantize_dynamic_int8``: int8 weights, activations quantized on the fly (PyTorch's dynamic
  quantization; for MLPs and other Linear-heavy models).
- ``quantize_static_int8``: int8 weights *and* activations, scales calibrated on training images
  (PyTorch's eager-mode static quantization; for CNNs).
- ``export_onnx`` / ``onnx_session`` / ``deployed_logits``: the model as an ONNX file, run by ONNX Runtime.
- ``logit_match``: how closely two runs of "the same" model agree (top-1 agreement, max |logit difference|).
- ``time_inference``: the latency method of ``kd.latency`` for any model, quantized or ONNX;
  ``layer_times``: where a forward pass spends its time, layer by layer.
- ``run_torchrun``: launch a script on several processes and return its output, or raise with the
  launcher's own error; never hang.
"""

from __future__ import annotations

import copy
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .config import atomic_write
from .evaluate import time_statement


class UnsupportedLayerError(ValueError):
    """Raised when a model holds a layer that int8 quantization or the ONNX exporter cannot handle."""


class TorchrunError(RuntimeError):
    """Raised when torchrun is missing, a rank fails, or the launch does not finish in time."""


# torch.ao.quantization works in torch 2.14 but announces its move to the torchao package on every call;
# building quantized weights warns that quantized tensor dtypes will move there too; and the x86 default
# configuration's observers (reduce_range=True) warn that reduce_range will be deprecated. All three are known and
# harmless for this course; they are silenced by message and category, here only, so other warnings still show.
_QUANTIZATION_NOISE = (
    (DeprecationWarning, r"torch\.ao\.quantization is deprecated"),
    (UserWarning, r"torch\.quantize_per_tensor, torch\.quantize_per_channel and other quantized tensor creation"),
    (UserWarning, r"Please use quant_min and quant_max to specify the range for observers"),
)


@contextmanager
def quiet_quantization() -> Iterator[None]:
    """Silence the known-harmless deprecation warnings of torch.ao.quantization (and only those)."""
    with warnings.catch_warnings():
        for category, message in _QUANTIZATION_NOISE:
            warnings.filterwarnings("ignore", message=message, category=category)
        yield


# Layers with a weight that dynamic quantization turns into int8 (torch.ao.quantization.quantize_dynamic).
_DYNAMIC_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.LSTM, nn.GRU, nn.LSTMCell, nn.GRUCell, nn.RNNCell)
# Layers that eager-mode static quantization can run on int8 tensors (the rest have no int8 kernel).
_STATIC_LAYERS: tuple[type[nn.Module], ...] = (
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.BatchNorm2d, nn.BatchNorm3d, nn.ReLU, nn.ReLU6, nn.Hardswish,
    nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Dropout, nn.Identity,
)
# Consecutive layers that are fused into one int8 kernel before static quantization.
_FUSIONS: tuple[tuple[type[nn.Module], ...], ...] = (
    (nn.Conv2d, nn.BatchNorm2d, nn.ReLU), (nn.Conv2d, nn.BatchNorm2d), (nn.Conv2d, nn.ReLU),
    (nn.BatchNorm2d, nn.ReLU), (nn.Linear, nn.ReLU),
)


def _leaf_layers(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    for name, module in model.named_modules():
        if not list(module.children()):
            yield name or type(model).__name__, module


def _check_model(model: Any, where: str) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"{where} needs a torch.nn.Module, got {type(model).__name__}")


def quantize_dynamic_int8(model: nn.Module, allow_float_layers: bool = False) -> nn.Module:
    """Return an int8 copy of `model` by dynamic quantization: int8 weights, activations quantized per batch.

    Only ``nn.Linear`` (and recurrent) layers are quantized. A layer with weights that dynamic
    quantization leaves in float (a convolution) raises UnsupportedLayerError naming it, unless
    ``allow_float_layers=True``; for a CNN use ``quantize_static_int8``.
    """
    _check_model(model, "quantize_dynamic_int8")
    weighted = [(name, layer) for name, layer in _leaf_layers(model) if any(True for _ in layer.parameters(recurse=False))]
    if not any(isinstance(layer, _DYNAMIC_LAYERS) for _, layer in weighted):
        raise UnsupportedLayerError(
            f"{type(model).__name__} has no layer that dynamic quantization supports (nn.Linear, nn.LSTM, nn.GRU): "
            "nothing would become int8; for convolutions use kd.deploy.quantize_static_int8"
        )
    left_in_float = [(name, layer) for name, layer in weighted if not isinstance(layer, _DYNAMIC_LAYERS)]
    if left_in_float and not allow_float_layers:
        name, layer = left_in_float[0]
        raise UnsupportedLayerError(
            f"dynamic quantization would leave layer {name!r} ({layer._get_name()}) of {type(model).__name__} in "
            "float: it has no dynamic int8 kernel. Use kd.deploy.quantize_static_int8 for convolutions, or pass "
            "allow_float_layers=True to keep such layers in float"
        )
    source = copy.deepcopy(model).cpu().eval()
    with quiet_quantization():
        return torch.ao.quantization.quantize_dynamic(source, set(_DYNAMIC_LAYERS), dtype=torch.qint8).eval()


def _fusion_groups(model: nn.Module) -> list[list[str]]:
    """Return the names of consecutive children of each nn.Sequential that fuse into one int8 kernel."""
    groups = []
    for prefix, module in model.named_modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.named_children())
        position = 0
        while position < len(children):
            for pattern in _FUSIONS:
                window = children[position:position + len(pattern)]
                if len(window) == len(pattern) and all(type(layer) is kind for (_, layer), kind in zip(window, pattern)):
                    groups.append([f"{prefix}.{name}" if prefix else name for name, _ in window])
                    position += len(pattern)
                    break
            else:
                position += 1
    return groups


@contextmanager
def _layer_trace(model: nn.Module) -> Iterator[list[tuple[str, str]]]:
    """Record ("start" or "end", layer name) as each leaf layer runs, to name where a forward pass failed."""
    trace: list[tuple[str, str]] = []
    handles = []
    layers = [(name, layer) for name, layer in model.named_modules()
              if name and not isinstance(layer, (nn.Sequential, nn.ModuleList, nn.ModuleDict))
              and "_packed_params" not in name]  # an int8 Linear keeps its weights in a child module
    for name, layer in layers:
        handles.append(layer.register_forward_pre_hook(lambda _m, _i, name=name: trace.append(("start", name))))
        handles.append(layer.register_forward_hook(lambda _m, _i, _o, name=name: trace.append(("end", name))))
    try:
        yield trace
    finally:
        for handle in handles:
            handle.remove()


def _where(trace: list[tuple[str, str]], model: nn.Module) -> str:
    if not trace:
        return f"in {type(model).__name__}.forward, before its first layer"
    event, name = trace[-1]
    return f"in layer {name!r}" if event == "start" else f"in {type(model).__name__}.forward, after layer {name!r}"


def quantize_static_int8(
    model: nn.Module, calibration_images: Tensor, batch_size: int = 500, engine: str | None = None
) -> nn.Module:
    """Return an int8 copy of `model` by static quantization, calibrated on `calibration_images`.

    Weights and activations become int8. The activations' scales are fixed beforehand, from the
    ranges observed on the calibration images (training images: never test images). Conv, BatchNorm
    and ReLU layers that follow each other are fused first, so that each group runs as one int8
    kernel. The result takes and returns float tensors (``QuantWrapper``). `engine` is the int8
    backend (default: PyTorch's choice for this CPU, e.g. ``x86``, ``qnnpack`` on ARM).
    """
    _check_model(model, "quantize_static_int8")
    if not isinstance(calibration_images, Tensor) or not calibration_images.is_floating_point():
        raise TypeError(f"calibration_images must be a float tensor of images, got {type(calibration_images).__name__}"
                        + (f" of {calibration_images.dtype}" if isinstance(calibration_images, Tensor) else ""))
    if len(calibration_images) == 0:
        raise ValueError("calibration_images is empty: pass a few hundred training images to observe activation ranges")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    for name, layer in _leaf_layers(model):
        if not isinstance(layer, _STATIC_LAYERS):
            raise UnsupportedLayerError(
                f"cannot quantize layer {name!r} ({layer._get_name()}) of {type(model).__name__}: PyTorch's static "
                f"int8 quantization has no kernel for it (supported: {', '.join(t.__name__ for t in _STATIC_LAYERS)}). "
                "Replace the layer, or quantize the rest dynamically with kd.deploy.quantize_dynamic_int8"
            )
    engine = engine or torch.backends.quantized.engine
    if engine not in torch.backends.quantized.supported_engines:
        raise ValueError(f"int8 engine {engine!r} is not available here; choose one of "
                         f"{torch.backends.quantized.supported_engines}")
    torch.backends.quantized.engine = engine  # the converted model runs on this engine's kernels
    float_model = copy.deepcopy(model).cpu().eval().to(memory_format=torch.contiguous_format)
    with quiet_quantization():
        torch.ao.quantization.fuse_modules(float_model, _fusion_groups(float_model), inplace=True)
        wrapped = torch.ao.quantization.QuantWrapper(float_model).eval()
        wrapped.qconfig = torch.ao.quantization.get_default_qconfig(engine)
        torch.ao.quantization.prepare(wrapped, inplace=True)
        with torch.inference_mode():
            for batch in calibration_images.split(batch_size):
                wrapped(batch.cpu())
        torch.ao.quantization.convert(wrapped, inplace=True)
    with _layer_trace(wrapped.module) as trace, torch.inference_mode():
        try:
            wrapped(calibration_images[:2].cpu())
        except (RuntimeError, NotImplementedError) as error:
            raise UnsupportedLayerError(
                f"the int8 {type(model).__name__} failed {_where(trace, model)}: {_first_sentence(error)} "
                "(an operation there has no int8 kernel; quantize only the parts that have, e.g. each member alone)"
            ) from error
    return wrapped.eval()


def _is_quantized_layer(layer: nn.Module) -> bool:
    return type(layer).__module__.startswith(("torch.ao.nn.quantized", "torch.ao.nn.intrinsic.quantized",
                                               "torch.nn.quantized"))


def export_onnx(model: nn.Module, path: Path | str, input_shape: tuple[int, ...] = (1, 28, 28),
                opset_version: int | None = None) -> Path:
    """Export `model` to an ONNX file with a dynamic batch dimension (torch.onnx.export, dynamo); return the path.

    `input_shape` is the shape of one image. The file is written whole or not at all (temporary file,
    then rename). A layer that the exporter cannot translate, such as PyTorch's own int8 layers, raises
    UnsupportedLayerError naming it; an input shape the model rejects raises ValueError.
    """
    _check_model(model, "export_onnx")
    path = Path(path)
    if path.suffix != ".onnx":
        raise ValueError(f"path should end in .onnx, got {path.name!r}")
    if not (isinstance(input_shape, tuple) and input_shape and all(isinstance(d, int) and d > 0 for d in input_shape)):
        raise ValueError(f"input_shape must be the shape of one input as a tuple of positive ints, e.g. (1, 28, 28); "
                         f"got {input_shape!r}")
    for name, layer in model.named_modules():  # outer layers first: name the DynamicQuantizedLinear, not its parts
        if _is_quantized_layer(layer):
            raise UnsupportedLayerError(
                f"cannot export layer {name!r} ({layer._get_name()}) to ONNX: PyTorch's int8 layers have no ONNX "
                "translation. Export the float model, then quantize the ONNX file with onnxruntime.quantization"
            )
    source = copy.deepcopy(model).cpu().eval().to(memory_format=torch.contiguous_format)
    example = torch.zeros(2, *input_shape)  # batch 2: torch.export would fix a batch of 1 as a constant
    with torch.no_grad():
        try:
            source(example)
        except (RuntimeError, ValueError) as error:
            raise ValueError(f"{type(model).__name__} does not accept inputs of shape (batch, "
                             f"{', '.join(map(str, input_shape))}): {str(error).splitlines()[0]}; pass input_shape="
                             "the shape of one input") from error
    try:
        program = torch.onnx.export(
            source, (example,), None, input_names=["images"], output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("batch")},), opset_version=opset_version, verbose=False,
        )
    except Exception as error:
        root = error
        while root.__cause__ is not None:
            root = root.__cause__
        raise UnsupportedLayerError(
            f"torch.onnx.export could not export {type(model).__name__}: {_first_sentence(error)}; the cause: "
            f"{type(root).__name__}: {_first_sentence(root)}"
        ) from error
    with atomic_write(path) as file:  # weights inside the one file: a student is far below ONNX's 2 GB limit
        file.write(program.model_proto.SerializeToString())
    return path


def _first_sentence(error: BaseException) -> str:
    """Return the first sentence of an error message, without terminal colour codes."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    return first.split(". ")[0].rstrip(".")


def onnx_session(path: Path | str, threads: int = 1):
    """Return an ONNX Runtime session for `path` on the CPU (CPUExecutionProvider) with `threads` threads."""
    import onnxruntime

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no ONNX file at {path}; write it first with kd.deploy.export_onnx(model, path)")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: no informational lines on stderr
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _is_session(target: Any) -> bool:
    return hasattr(target, "get_inputs") and hasattr(target, "run")


def _check_session_input(session, images: Tensor) -> str:
    spec = session.get_inputs()[0]
    fixed = list(spec.shape[1:])
    if images.dim() != len(spec.shape) or any(isinstance(d, int) and d != s for d, s in zip(fixed, images.shape[1:])):
        expected = ", ".join(str(d) for d in spec.shape)
        raise ValueError(f"the ONNX model expects input {spec.name!r} of shape ({expected}), got images of shape "
                         f"{tuple(images.shape)}; reshape the images or export with another input_shape")
    return spec.name


@torch.inference_mode()
def deployed_logits(target: nn.Module | Any, images: Tensor, batch_size: int = 1000) -> Tensor:
    """Return the logits of a model (float or int8) or of an ONNX Runtime session for `images`, on the CPU, in batches."""
    if not isinstance(images, Tensor) or not images.is_floating_point():
        raise TypeError(f"images must be a float tensor, got {type(images).__name__}")
    if _is_session(target):
        name = _check_session_input(target, images)
        outputs = [torch.from_numpy(target.run(None, {name: batch.contiguous().numpy()})[0])
                   for batch in images.cpu().split(batch_size)]
    else:
        _check_model(target, "deployed_logits")
        target.eval()
        outputs = [target(batch).float() for batch in images.cpu().split(batch_size)]
    return torch.cat(outputs) if outputs else torch.empty(0)


def logit_match(reference: Tensor, candidate: Tensor) -> dict[str, float]:
    """Return how closely `candidate` logits match `reference` ones: top-1 agreement and max |difference|."""
    if reference.shape != candidate.shape:
        raise ValueError(f"logits of shapes {tuple(reference.shape)} and {tuple(candidate.shape)} cannot be compared: "
                         "compute both on the same images")
    if len(reference) == 0:
        raise ValueError("no logits to compare: the tensors are empty")
    return {
        "images": len(reference),
        "agreement": (reference.argmax(1) == candidate.argmax(1)).float().mean().item(),
        "max_abs_difference": (reference.float() - candidate.float()).abs().max().item(),
    }


def time_inference(
    target: nn.Module | Any,
    batch_size: int = 1,
    input_shape: tuple[int, ...] = (1, 28, 28),
    threads: int = 1,
    min_run_time: float = 0.5,
) -> dict[str, float]:
    """Measure CPU inference time of a model (float or int8) or an ONNX Runtime session, as kd.latency does.

    torch.utils.benchmark warms up, repeats and reports the median. `threads` sets PyTorch's
    threads; an ONNX Runtime session uses the threads it was created with (``kd.deploy.onnx_session``).
    """
    images = torch.randn(batch_size, *input_shape)
    if _is_session(target):
        name = _check_session_input(target, images)
        stmt, arguments = "target.run(None, {name: images})", {"target": target, "name": name, "images": images.numpy()}
    else:
        _check_model(target, "time_inference")
        target.eval()
        stmt, arguments = "with torch.inference_mode(): target(images)", {"target": target, "images": images, "torch": torch}
    return time_statement(stmt, arguments, batch_size, threads, min_run_time)


@torch.inference_mode()
def layer_times(model: nn.Module, images: Tensor, repeats: int = 20, threads: int = 1) -> list[dict[str, Any]]:
    """Return each layer's median seconds per forward pass on `images`, in the order the layers run.

    Forward hooks read the clock as each layer starts and ends (a few microseconds of overhead, so
    use a batch large enough for the layers to take much longer). Containers (``nn.Sequential``) are
    not timed, their layers are; a custom module holding layers is timed as a whole and so are its
    layers. Returns ``[{"layer": name, "type": class name, "seconds": median}, ...]``.
    """
    _check_model(model, "layer_times")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    model.eval()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    started: dict[str, float] = {}
    samples: dict[str, list[float]] = {}
    kinds: dict[str, str] = {}
    handles = []
    for name, layer in model.named_modules():
        if not name or isinstance(layer, (nn.Sequential, nn.ModuleList, nn.ModuleDict)) or "_packed_params" in name:
            continue
        kinds[name] = layer._get_name()
        handles.append(layer.register_forward_pre_hook(
            lambda _m, _i, name=name: started.__setitem__(name, time.perf_counter())))
        handles.append(layer.register_forward_hook(
            lambda _m, _i, _o, name=name: samples.setdefault(name, []).append(time.perf_counter() - started[name])))
    try:
        model(images)  # warm-up: first calls allocate and pick kernels
        samples.clear()
        for _ in range(repeats):
            model(images)
    finally:
        for handle in handles:
            handle.remove()
        torch.set_num_threads(previous_threads)
    return [{"layer": name, "type": kinds[name], "seconds": statistics.median(values)} for name, values in samples.items()]


def run_torchrun(
    script: Path | str,
    arguments: Sequence[str] = (),
    nproc_per_node: int = 2,
    timeout: float = 300,
    env: dict[str, str] | None = None,
    launcher: Sequence[str] | None = None,
) -> str:
    """Run ``torchrun --standalone --nproc_per_node=N script arguments``; return its output (stdout and stderr).

    A rank that fails makes torchrun stop the others and exit non-zero: TorchrunError then carries the
    end of the launcher's output, which names the rank and its error. A launch still running after
    `timeout` seconds is killed with all its processes. `launcher` replaces ``python -m torch.distributed.run``.
    """
    script = Path(script)
    if not script.is_file():
        raise FileNotFoundError(f"no script at {script}")
    if nproc_per_node < 1:
        raise ValueError(f"nproc_per_node must be at least 1, got {nproc_per_node}")
    if launcher is None:
        if not torch.distributed.is_available():
            raise TorchrunError("torchrun is missing: this PyTorch build has no torch.distributed; install the "
                                "standard torch wheel (pip install torch)")
        launcher = [sys.executable, "-m", "torch.distributed.run"]
    command = [*launcher, "--standalone", f"--nproc_per_node={nproc_per_node}", str(script), *map(str, arguments)]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env=environment, start_new_session=True)
    except FileNotFoundError as error:
        raise TorchrunError(f"torchrun is missing: could not start {command[0]!r} ({error.strerror}); install torch "
                            "in this environment, or pass launcher=[path to torchrun]") from error
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the launcher and every rank it started
        output, _ = process.communicate()
        raise TorchrunError(f"torchrun did not finish within {timeout:g} s and was stopped; its output so far:\n"
                            f"{_tail(output)}") from None
    if process.returncode != 0:
        raise TorchrunError(f"torchrun exited with code {process.returncode}{_root_cause(output)}; the end of its "
                            f"output:\n{_tail(output)}")
    return output


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _root_cause(output: str) -> str:
    """Return ": rank R failed first with Error: message", read from torchrun's failure summary ("" if none)."""
    summary = output.rpartition("Root Cause")[2]
    rank = re.search(r"^\s*rank\s*:\s*(\d+)", summary, re.MULTILINE)
    errors = re.findall(r"^\s*((?:[A-Za-z_][\w.]*)?(?:Error|Exception)\b.*)$", summary, re.MULTILINE)
    if not rank:
        return ""
    return f": rank {rank.group(1)} failed first" + (f" with {errors[-1].strip()}" if errors else "")
