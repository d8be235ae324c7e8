"""Fashion-MNIST, found offline, loaded once into memory as tensors.

The raw IDX files are read with ``torchvision.datasets.FashionMNIST`` from
``data/FashionMNIST/raw``, which is filled from the first source that works:

1. files already there (``data/`` of the project, or the folder in ``KD_DATA_DIR``);
2. the copy that Debian's ``dataset-fashion-mnist`` package installs in
   ``/usr/share/datasets/fashion-mnist``, decompressed into place;
3. torchvision's own download, for a learner who is online.
"""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from . import config

CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
NUM_CLASSES = len(CLASS_NAMES)

# Mean and standard deviation of the 60,000 training images' pixels in [0, 1];
# tests/test_data.py recomputes them from the real files.
PIXEL_MEAN = 0.2860
PIXEL_STD = 0.3530

SYSTEM_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

DOWNLOAD_TIMEOUT = 30.0  # seconds per socket operation of torchvision's download
VALIDATION_SIZE = 5_000
SPLIT_SEED = 2024
# Smoke mode: the same code path on a few thousand images.
SMOKE_SIZES = {"train": 3_000, "val": 1_000, "test": 2_000}


class DataNotFoundError(FileNotFoundError):
    """Raised when Fashion-MNIST is in none of the three places it is looked for."""


def _system_dir() -> Path:
    return Path(os.environ.get("KD_SYSTEM_DATA_DIR", SYSTEM_DATA_DIR))


def _raw_dir(root: Path) -> Path:
    return Path(root) / "FashionMNIST" / "raw"


def _has_raw_files(raw_dir: Path) -> bool:
    return all((raw_dir / name).is_file() for name in RAW_FILES)


def _copy_from_system(system_dir: Path, raw_dir: Path) -> bool:
    sources = {}
    for name in RAW_FILES:
        if (system_dir / name).is_file():
            sources[name] = (system_dir / name, False)
        elif (system_dir / f"{name}.gz").is_file():
            sources[name] = (system_dir / f"{name}.gz", True)
        else:
            return False
    raw_dir.mkdir(parents=True, exist_ok=True)
    for name, (source, compressed) in sources.items():
        opener = gzip.open if compressed else open
        with opener(source, "rb") as src, config.atomic_write(raw_dir / name) as dst:
            shutil.copyfileobj(src, dst)
    return True


def ensure_fashion_mnist(root: Path | str | None = None, download: bool = True) -> Path:
    """Make sure the raw Fashion-MNIST files are under ``root``; return ``root``.

    Tries the files already there, then Debian's copy, then torchvision's download.
    Raises DataNotFoundError naming all three ways to get the data when none works.
    """
    root = Path(root) if root is not None else config.DATA_DIR
    raw_dir = _raw_dir(root)
    if _has_raw_files(raw_dir):
        return root
    system_dir = _system_dir()
    if _copy_from_system(system_dir, raw_dir):
        return root
    download_error = "download=False"
    if download:
        import socket

        # A network that accepts connections but never answers must not hang a notebook: every socket
        # operation of the download gives up after KD_DOWNLOAD_TIMEOUT seconds.
        previous_timeout = socket.getdefaulttimeout()
        socket.setdefaulttimeout(float(os.environ.get("KD_DOWNLOAD_TIMEOUT", DOWNLOAD_TIMEOUT)))
        try:
            from torchvision.datasets import FashionMNIST

            FashionMNIST(str(root), train=True, download=True)
            FashionMNIST(str(root), train=False, download=True)
            if _has_raw_files(raw_dir):
                return root
            download_error = "download finished but the files are missing"
        except Exception as error:  # noqa: BLE001 - any failure leads to the same advice
            download_error = f"{type(error).__name__}: {error}"
        finally:
            socket.setdefaulttimeout(previous_timeout)
    raise DataNotFoundError(
        "Fashion-MNIST was not found. Get it in one of three ways:\n"
        f"  1. put the four IDX files ({', '.join(RAW_FILES)}) in {raw_dir}\n"
        "     (or point KD_DATA_DIR at a folder holding FashionMNIST/raw/);\n"
        "  2. install Debian's copy: sudo apt-get update && sudo apt-get install "
        f"dataset-fashion-mnist (it fills {system_dir});\n"
        "  3. connect to the internet so that torchvision can download it "
        f"(last attempt: {download_error})."
    )


@dataclass
class FashionMNISTData:
    """Normalised image tensors (N, 1, 28, 28) and integer labels for each split."""

    train_x: Tensor
    train_y: Tensor
    val_x: Tensor
    val_y: Tensor
    test_x: Tensor
    test_y: Tensor
    smoke: bool

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASS_NAMES

    def sizes(self) -> dict[str, int]:
        """Return the number of images in each split."""
        return {"train": len(self.train_y), "val": len(self.val_y), "test": len(self.test_y)}

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={v:,}" for k, v in self.sizes().items())
        return f"FashionMNISTData({sizes}, smoke={self.smoke})"


def normalize(images_uint8: Tensor) -> Tensor:
    """Turn uint8 images (N, 28, 28) into normalised float32 tensors (N, 1, 28, 28)."""
    images = images_uint8.to(torch.float32).div_(255.0)
    return images.sub_(PIXEL_MEAN).div_(PIXEL_STD).unsqueeze(1)


def denormalize(images: Tensor) -> Tensor:
    """Undo `normalize`, giving pixel values in [0, 1] for display."""
    return (images * PIXEL_STD + PIXEL_MEAN).clamp(0, 1)


def split_indices(n: int, val_size: int, seed: int = SPLIT_SEED) -> tuple[Tensor, Tensor]:
    """Return disjoint (train, validation) index tensors from a seeded permutation of range(n)."""
    if not 0 < val_size < n:
        raise ValueError(f"val_size must be between 1 and {n - 1}, got {val_size}")
    generator = torch.Generator().manual_seed(seed)
    permutation = torch.randperm(n, generator=generator)
    return permutation[val_size:].sort().values, permutation[:val_size].sort().values


_CACHE: dict[tuple, FashionMNISTData] = {}


def load_fashion_mnist(
    smoke: bool | None = None, root: Path | str | None = None, val_size: int = VALIDATION_SIZE
) -> FashionMNISTData:
    """Load Fashion-MNIST into memory once: train / validation / test tensors.

    The validation split is carved from the 60,000 training images with a fixed
    seed, so every notebook sees the same split. The test set only reports.
    In smoke mode (KD_SMOKE=1, or ``smoke=True``) each split is a seeded subset.
    """
    from torchvision.datasets import FashionMNIST

    smoke = config.is_smoke() if smoke is None else smoke
    root = ensure_fashion_mnist(root)
    key = (str(Path(root).resolve()), smoke, val_size)
    if key in _CACHE:
        return _CACHE[key]
    train_set = FashionMNIST(str(root), train=True, download=False)
    test_set = FashionMNIST(str(root), train=False, download=False)
    train_idx, val_idx = split_indices(len(train_set.targets), val_size)
    test_idx = torch.arange(len(test_set.targets))
    if smoke:
        generator = torch.Generator().manual_seed(SPLIT_SEED + 1)
        train_idx = train_idx[torch.randperm(len(train_idx), generator=generator)[: SMOKE_SIZES["train"]]]
        val_idx = val_idx[torch.randperm(len(val_idx), generator=generator)[: SMOKE_SIZES["val"]]]
        test_idx = test_idx[torch.randperm(len(test_idx), generator=generator)[: SMOKE_SIZES["test"]]]
    train_images = normalize(train_set.data)
    data = FashionMNISTData(
        train_x=train_images[train_idx].contiguous(),
        train_y=train_set.targets[train_idx].clone(),
        val_x=train_images[val_idx].contiguous(),
        val_y=train_set.targets[val_idx].clone(),
        test_x=normalize(test_set.data[test_idx]).contiguous(),
        test_y=test_set.targets[test_idx].clone(),
        smoke=smoke,
    )
    _CACHE[key] = data
    return data


def batch_indices(
    n: int, batch_size: int, shuffle: bool = True, generator: torch.Generator | None = None
) -> Iterator[Tensor]:
    """Yield index tensors of mini-batches over range(n), shuffled with `generator` if asked."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    yield from order.split(batch_size)


def iterate_batches(
    x: Tensor,
    y: Tensor,
    batch_size: int,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield (images, labels) mini-batches by tensor indexing: no per-sample transforms."""
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
    for index in batch_indices(len(x), batch_size, shuffle, generator):
        yield x[index], y[index]


def random_shift(images: Tensor, max_shift: int = 2, generator: torch.Generator | None = None) -> Tensor:
    """Return a copy of normalised images (N, 1, 28, 28), each moved by up to `max_shift` pixels in x and y.

    Uncovered pixels get the background value (a black pixel, normalised). One vectorised
    gather for the whole batch: no per-image Python loop.
    """
    if images.dim() != 4:
        raise ValueError(f"random_shift needs images of shape (N, C, H, W), got {tuple(images.shape)}")
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0 pixels, got {max_shift}")
    if max_shift == 0 or len(images) == 0:
        return images.clone()
    n, _, height, width = images.shape
    background = (0.0 - PIXEL_MEAN) / PIXEL_STD
    padded = torch.nn.functional.pad(images, (max_shift,) * 4, value=background)
    shifts = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator)
    rows = (torch.arange(height)[None] + shifts[0][:, None])[:, None, :, None]
    columns = (torch.arange(width)[None] + shifts[1][:, None])[:, None, None, :]
    batch = torch.arange(n)[:, None, None, None]
    channel = torch.arange(images.shape[1])[None, :, None, None]
    return padded[batch, channel, rows, columns].contiguous()


def labelled_subset(labels: Tensor, per_class: int, seed: int = 0) -> Tensor:
    """Return sorted indices of `per_class` images of each class (a class-balanced subset)."""
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for label in labels.unique():
        members = (labels == label).nonzero().flatten()
        if len(members) < per_class:
            raise ValueError(f"class {int(label)} has only {len(members)} images, asked for {per_class}")
        chosen.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    return torch.cat(chosen).sort().values


def main(argv: list[str] | None = None) -> int:
    """Prepare the data from the command line: ``python -m kd_utils [--check]``."""
    import argparse

    parser = argparse.ArgumentParser(description="Find Fashion-MNIST offline and put it in data/FashionMNIST/raw.")
    parser.add_argument("--check", action="store_true", help="only report whether the files are in place (exit 1 if not)")
    args = parser.parse_args(argv)
    raw_dir = _raw_dir(config.DATA_DIR)
    if args.check:
        found = _has_raw_files(raw_dir) or all(
            (_system_dir() / f"{name}.gz").is_file() or (_system_dir() / name).is_file() for name in RAW_FILES
        )
        print(f"Fashion-MNIST {'found' if found else 'not found'} (looked in {raw_dir} and {_system_dir()})")
        return 0 if found else 1
    try:
        ensure_fashion_mnist()
    except DataNotFoundError as error:
        print(error)
        return 1
    print(f"Fashion-MNIST is ready in {raw_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
