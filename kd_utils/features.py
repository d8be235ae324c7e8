"""Feature taps by forward hooks: read any stage's output by name, with no second ``forward``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from torch import Tensor, nn


@contextmanager
def tap(model: nn.Module, names: str | Iterable[str], detach: bool = False) -> Iterator[dict[str, Tensor]]:
    """Record the outputs of the named submodules while the block runs.

    Yields a dict that each forward pass fills with ``{name: output}``. Every hook is
    removed on exit, also when the body raises::

        with kd.tap(teacher, ["block2"]) as features:
            logits = teacher(images)
        features["block2"].shape
    """
    names = [names] if isinstance(names, str) else list(names)
    if not names:  # nothing to record: no walk over the modules (kd.train's steps without feature terms)
        yield {}
        return
    modules = dict(model.named_modules())
    unknown = [name for name in names if name not in modules or name == ""]
    if unknown:
        known = ", ".join(name for name in modules if name)
        raise KeyError(f"no submodule named {', '.join(map(repr, unknown))} in {type(model).__name__}; names that exist: {known}")
    features: dict[str, Tensor] = {}
    handles = []

    def make_hook(name: str):
        def hook(_module: nn.Module, _inputs, output: Tensor) -> None:
            features[name] = output.detach() if detach else output

        return hook

    try:
        for name in names:
            handles.append(modules[name].register_forward_hook(make_hook(name)))
        yield features
    finally:
        for handle in handles:
            handle.remove()


def hook_count(model: nn.Module) -> int:
    """Return how many forward hooks are registered on a model and its submodules."""
    return sum(len(module._forward_hooks) for module in model.modules())
