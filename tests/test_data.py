import gzip
import shutil

import pytest
import torch

import kd_utils as kd
from kd_utils import data as kd_data


def test_splits_have_expected_shapes_dtypes_and_label_range(data):
    for images, labels in [(data.train_x, data.train_y), (data.val_x, data.val_y), (data.test_x, data.test_y)]:
        assert images.dtype == torch.float32
        assert images.shape[1:] == (1, 28, 28)
        assert labels.dtype == torch.int64
        assert len(images) == len(labels)
        assert 0 <= labels.min() and labels.max() <= 9


def test_smoke_sizes_are_the_documented_subsets(data):
    assert data.sizes() == kd_data.SMOKE_SIZES
    assert data.smoke


def test_full_data_has_55000_train_5000_val_10000_test():
    full = kd.load_fashion_mnist(smoke=False)
    assert full.sizes() == {"train": 55_000, "val": 5_000, "test": 10_000}
    assert torch.bincount(full.test_y).tolist() == [1000] * 10


def test_normalisation_constants_match_the_training_pixels():
    full = kd.load_fashion_mnist(smoke=False)
    pixels = kd.data.denormalize(torch.cat([full.train_x, full.val_x]))
    assert pixels.mean().item() == pytest.approx(kd_data.PIXEL_MEAN, abs=1e-3)
    assert pixels.std().item() == pytest.approx(kd_data.PIXEL_STD, abs=1e-3)


def test_train_and_validation_split_is_disjoint_and_covers_all():
    train_index, val_index = kd_data.split_indices(60_000, 5_000)
    assert len(set(train_index.tolist()) & set(val_index.tolist())) == 0
    assert len(train_index) + len(val_index) == 60_000
    assert torch.equal(torch.cat([train_index, val_index]).sort().values, torch.arange(60_000))


def test_split_is_the_same_for_the_same_seed_and_differs_for_another():
    first, _ = kd_data.split_indices(1000, 100, seed=1)
    again, _ = kd_data.split_indices(1000, 100, seed=1)
    other, _ = kd_data.split_indices(1000, 100, seed=2)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_split_rejects_a_validation_size_that_leaves_nothing():
    with pytest.raises(ValueError, match="val_size"):
        kd_data.split_indices(10, 10)


def test_batches_cover_every_image_once_per_epoch(data):
    seen = torch.cat([labels for _, labels in kd.iterate_batches(data.train_x, data.train_y, 128)])
    assert len(seen) == len(data.train_y)
    assert torch.equal(seen.sort().values, data.train_y.sort().values)
    index = torch.cat(list(kd.data.batch_indices(1000, 64, True, torch.Generator().manual_seed(0))))
    assert torch.equal(index.sort().values, torch.arange(1000))


def test_batches_are_shuffled_the_same_way_under_the_same_seed():
    first = torch.cat(list(kd.data.batch_indices(500, 50, True, torch.Generator().manual_seed(3))))
    again = torch.cat(list(kd.data.batch_indices(500, 50, True, torch.Generator().manual_seed(3))))
    assert torch.equal(first, again)
    assert not torch.equal(first, torch.arange(500))


def test_iterate_batches_rejects_mismatched_lengths(data):
    with pytest.raises(ValueError, match="rows"):
        next(kd.iterate_batches(data.train_x[:10], data.train_y[:9], 4))


def test_labelled_subset_is_class_balanced(data):
    index = kd.labelled_subset(data.train_y, per_class=20, seed=0)
    assert torch.bincount(data.train_y[index], minlength=10).tolist() == [20] * 10


def test_class_names_are_the_ten_fashion_mnist_classes():
    assert len(kd.CLASS_NAMES) == 10
    assert kd.CLASS_NAMES[0] == "T-shirt/top" and kd.CLASS_NAMES[9] == "Ankle boot"


def test_missing_data_error_names_all_three_sources(tmp_path, monkeypatch):
    monkeypatch.setenv("KD_SYSTEM_DATA_DIR", str(tmp_path / "no-debian-copy"))
    monkeypatch.setattr("torchvision.datasets.FashionMNIST.mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(kd.data.DataNotFoundError) as caught:
        kd.data.ensure_fashion_mnist(tmp_path / "empty")
    message = str(caught.value)
    assert "FashionMNIST/raw" in message  # 1. files in place
    assert "apt-get install dataset-fashion-mnist" in message  # 2. Debian's copy
    assert "download" in message  # 3. torchvision's download


def test_debian_copy_is_decompressed_into_place(tmp_path, monkeypatch):
    system = tmp_path / "system"
    system.mkdir()
    for name in kd_data.RAW_FILES:
        with gzip.open(system / f"{name}.gz", "wb") as file:
            file.write(name.encode())
    monkeypatch.setenv("KD_SYSTEM_DATA_DIR", str(system))
    root = kd.data.ensure_fashion_mnist(tmp_path / "data", download=False)
    raw = root / "FashionMNIST" / "raw"
    for name in kd_data.RAW_FILES:
        assert (raw / name).read_bytes() == name.encode()


def test_files_already_in_place_are_used_without_looking_further(data, tmp_path, monkeypatch):
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    shutil.copytree(kd.config.DATA_DIR / "FashionMNIST" / "raw", raw)
    monkeypatch.setenv("KD_SYSTEM_DATA_DIR", str(tmp_path / "nothing-here"))
    assert kd.data.ensure_fashion_mnist(tmp_path / "data", download=False) == tmp_path / "data"


def test_a_network_that_accepts_but_never_answers_ends_in_the_three_ways_error(tmp_path, monkeypatch):
    import socket
    import time

    from torchvision.datasets import FashionMNIST

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)  # accepts connections (the kernel completes the handshake) and never sends a byte
    port = server.getsockname()[1]
    monkeypatch.setenv("KD_SYSTEM_DATA_DIR", str(tmp_path / "no-debian-copy"))
    monkeypatch.setenv("KD_DOWNLOAD_TIMEOUT", "0.5")
    monkeypatch.setattr(FashionMNIST, "mirrors", [f"http://127.0.0.1:{port}/"])
    start = time.perf_counter()
    try:
        with pytest.raises(kd.data.DataNotFoundError, match="three ways") as caught:
            kd.data.ensure_fashion_mnist(tmp_path / "data")
    finally:
        server.close()
    assert time.perf_counter() - start < 20
    assert "timed out" in str(caught.value).lower()
