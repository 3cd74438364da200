"""eicil.data on tiny files written in torchvision's own on-disk formats (no network needed)."""
from __future__ import annotations

import pickle
import struct
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision.datasets.cifar
from sklearn.datasets import load_digits

from eicil.data import DATASETS, DataError, build_data

CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)


def collect(loader) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*loader)
    return torch.cat(xs), torch.cat(ys)


def normalized(images: np.ndarray, mean, std) -> torch.Tensor:
    """uint8 [N,C,H,W] as ToTensor + Normalize would give it."""
    x = torch.tensor(images, dtype=torch.float32) / 255
    return (x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)


def write_idx(path: Path, array: np.ndarray) -> None:
    # Big-endian magic: two zero bytes, 0x08 (unsigned byte), number of dims; then each dim as uint32.
    header = bytes([0, 0, 8, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, n_train: int = 40, n_test: int = 20) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    arrays = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        arrays[f"{split}_x"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_y"] = rng.integers(0, 10, n, dtype=np.uint8)
        write_idx(raw / f"{split}-images-idx3-ubyte", arrays[f"{split}_x"])
        write_idx(raw / f"{split}-labels-idx1-ubyte", arrays[f"{split}_y"])
    assert (raw / "train-images-idx3-ubyte").read_bytes()[:4] == (2051).to_bytes(4, "big")
    assert (raw / "train-labels-idx1-ubyte").read_bytes()[:4] == (2049).to_bytes(4, "big")
    return arrays


def pickle_to(path: Path, obj: dict) -> None:
    # The official files come from Python 2, whose str keys load as str under torchvision's
    # encoding="latin1"; Python 3 str keys load the same way (bytes keys would not).
    path.write_bytes(pickle.dumps(obj, protocol=2))


def write_cifar10(root: Path, per_batch: int = 4, n_test: int = 10) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train_x, train_y = [], []
    for i in range(1, 6):
        x = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        y = rng.integers(0, 10, per_batch).tolist()
        pickle_to(folder / f"data_batch_{i}", {"data": x, "labels": y, "batch_label": f"batch {i}"})
        train_x.append(x)
        train_y += y
    test_x = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    test_y = rng.integers(0, 10, n_test).tolist()
    pickle_to(folder / "test_batch", {"data": test_x, "labels": test_y, "batch_label": "test"})
    pickle_to(folder / "batches.meta", {"label_names": [f"class{i}" for i in range(10)]})
    return {"train_x": np.concatenate(train_x).reshape(-1, 3, 32, 32), "train_y": np.array(train_y),
            "test_x": test_x.reshape(-1, 3, 32, 32), "test_y": np.array(test_y)}


def write_cifar100(root: Path, n_train: int = 20, n_test: int = 10) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        fine = rng.integers(0, 100, n).tolist()
        pickle_to(folder / split, {"data": x, "fine_labels": fine, "coarse_labels": [f // 5 for f in fine]})
        arrays[f"{split}_x"], arrays[f"{split}_y"] = x.reshape(-1, 3, 32, 32), np.array(fine)
    pickle_to(folder / "meta", {"fine_label_names": [f"f{i}" for i in range(100)],
                                "coarse_label_names": [f"c{i}" for i in range(20)]})
    return arrays


# --- argument checks ---------------------------------------------------------------------------

def test_unknown_dataset_lists_the_valid_names():
    with pytest.raises(DataError) as e:
        build_data("imagenet")
    assert all(name in str(e.value) for name in DATASETS)


@pytest.mark.parametrize("kwargs", [{"val_fraction": 0.0}, {"val_fraction": 0.5}, {"val_fraction": -0.1},
                                    {"batch_size": 0}, {"train_subset": -1}])
def test_bad_settings_raise_data_error(kwargs):
    with pytest.raises(DataError):
        build_data("fake", fake_shape=(1, 4, 4), **kwargs)


# --- digits and fake ---------------------------------------------------------------------------

def test_digits_shapes_range_and_fixed_stratified_test_split():
    a = build_data("digits", seed=0, batch_size=512)
    b = build_data("digits", seed=1, batch_size=512)
    assert (a.in_channels, a.num_classes, a.image_size) == (1, 10, 8)
    xa, ya = collect(a.test)
    xb, yb = collect(b.test)
    assert xa.shape[1:] == (1, 8, 8) and xa.dtype == torch.float32 and ya.dtype == torch.int64
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert 0 <= xa.min() and xa.max() <= 1
    full = torch.tensor(load_digits().target)
    assert (torch.bincount(ya, minlength=10) - torch.bincount(full) * 0.2).abs().max() <= 1  # stratified
    n_train, n_val = len(a.train.dataset), len(a.val.dataset)
    assert n_train + n_val + len(ya) == len(full)
    assert a.val.dataset.indices != b.val.dataset.indices


def test_digits_ignores_augment():
    plain, augmented = build_data("digits", augment=False), build_data("digits", augment=True)
    torch.manual_seed(3)
    x_plain, _ = next(iter(plain.train))
    torch.manual_seed(3)
    x_aug, _ = next(iter(augmented.train))
    assert torch.equal(x_plain, x_aug)


def test_split_is_seeded_disjoint_and_test_independent_of_seed():
    def build(seed: int):
        return build_data("fake", seed=seed, fake_shape=(1, 4, 4), fake_train=100, fake_test=30, val_fraction=0.2)
    a, a2, b = build(0), build(0), build(1)
    assert a.val.dataset.indices == a2.val.dataset.indices
    assert torch.equal(collect(a.val)[0], collect(a2.val)[0])
    assert a.val.dataset.indices != b.val.dataset.indices
    assert len(a.val.dataset) == 20 and len(a.train.dataset) == 80
    assert not set(a.val.dataset.indices) & set(a.train.dataset.indices)
    for xa_ya, xb_yb in zip(collect(a.test), collect(b.test)):
        assert torch.equal(xa_ya, xb_yb)


def test_train_subset_keeps_that_many_seeded_examples():
    a = build_data("fake", fake_shape=(1, 4, 4), fake_train=100, train_subset=17, seed=0)
    b = build_data("fake", fake_shape=(1, 4, 4), fake_train=100, train_subset=17, seed=1)
    assert len(a.train.dataset) == 17 and len(collect(a.train)[1]) == 17
    assert len(a.val.dataset) == 10
    assert a.train.dataset.indices != b.train.dataset.indices


def test_train_order_follows_the_global_rng():
    data = build_data("fake", fake_shape=(1, 4, 4), fake_train=200, batch_size=200)
    orders = []
    for seed in (5, 5, 6):
        torch.manual_seed(seed)
        orders.append(collect(data.train)[0])
    assert torch.equal(orders[0], orders[1])
    assert not torch.equal(orders[0], orders[2])


def test_fake_is_learnable_but_noisy():
    data = build_data("fake", fake_shape=(3, 6, 6), fake_classes=5, fake_train=300, fake_test=100,
                      batch_size=1000)
    assert (data.in_channels, data.num_classes, data.image_size) == (3, 5, 6)
    x, y = collect(data.train)
    x_test, y_test = collect(data.test)
    assert x.dtype == torch.float32 and y.dtype == torch.int64 and x.shape[1:] == (3, 6, 6)
    assert 0 <= x.min() and x.max() <= 1
    means = torch.stack([x[y == c].mean(0) for c in range(5)])
    nearest = torch.cdist(x_test.flatten(1), means.flatten(1)).argmin(1)
    assert (nearest == y_test).float().mean() > 0.8  # chance is 0.2
    within = (x - means[y]).std()
    assert within > 0.5 * means.std()


# --- torchvision datasets ----------------------------------------------------------------------

def test_mnist_round_trip_normalization_and_unaugmented_val(tmp_path):
    arrays = write_mnist(tmp_path)
    data = build_data("mnist", data_root=str(tmp_path), augment=True, val_fraction=0.25, batch_size=16)
    assert (data.in_channels, data.num_classes, data.image_size) == (1, 10, 28)
    x_test, y_test = collect(data.test)
    assert x_test.shape == (20, 1, 28, 28) and x_test.dtype == torch.float32 and y_test.dtype == torch.int64
    assert torch.equal(y_test, torch.tensor(arrays["t10k_y"], dtype=torch.int64))
    assert torch.allclose(x_test, normalized(arrays["t10k_x"][:, None], (0.1307,), (0.3081,)), atol=1e-5)
    val_idx = data.val.dataset.indices
    x_val, y_val = collect(data.val)
    assert len(val_idx) == 10
    assert torch.allclose(x_val, normalized(arrays["train_x"][val_idx][:, None], (0.1307,), (0.3081,)), atol=1e-5)
    assert torch.equal(y_val, torch.tensor(arrays["train_y"][val_idx], dtype=torch.int64))
    train_idx = data.train.dataset.indices
    x_train = torch.stack([data.train.dataset[i][0] for i in range(len(train_idx))])
    assert not torch.allclose(x_train, normalized(arrays["train_x"][train_idx][:, None], (0.1307,), (0.3081,)))


def test_cifar10_round_trip_normalization_and_unaugmented_val(tmp_path):
    arrays = write_cifar10(tmp_path)
    data = build_data("cifar10", data_root=str(tmp_path), augment=True, val_fraction=0.25, batch_size=8)
    assert (data.in_channels, data.num_classes, data.image_size) == (3, 10, 32)
    x_test, y_test = collect(data.test)
    assert x_test.shape == (10, 3, 32, 32) and x_test.dtype == torch.float32 and y_test.dtype == torch.int64
    assert torch.equal(y_test, torch.tensor(arrays["test_y"]))
    assert torch.allclose(x_test, normalized(arrays["test_x"], (0.5,) * 3, (0.5,) * 3), atol=1e-5)
    val_idx = data.val.dataset.indices
    assert torch.allclose(collect(data.val)[0], normalized(arrays["train_x"][val_idx], (0.5,) * 3, (0.5,) * 3),
                          atol=1e-5)
    assert len(data.train.dataset) + len(val_idx) == 20
    train_idx = data.train.dataset.indices
    x_train = torch.stack([data.train.dataset[i][0] for i in range(len(train_idx))])
    assert not torch.allclose(x_train, normalized(arrays["train_x"][train_idx], (0.5,) * 3, (0.5,) * 3))


def test_cifar100_fine_labels_normalization_and_augmentation(tmp_path):
    arrays = write_cifar100(tmp_path)
    data = build_data("cifar100", data_root=str(tmp_path), augment=True, batch_size=8, val_fraction=0.2)
    assert (data.in_channels, data.num_classes, data.image_size) == (3, 100, 32)
    x_test, y_test = collect(data.test)
    assert torch.equal(y_test, torch.tensor(arrays["test_y"]))
    assert torch.allclose(x_test, normalized(arrays["test_x"], CIFAR100_MEAN, CIFAR100_STD), atol=1e-5)
    val_idx = data.val.dataset.indices
    assert torch.allclose(collect(data.val)[0], normalized(arrays["train_x"][val_idx], CIFAR100_MEAN, CIFAR100_STD),
                          atol=1e-5)
    train_idx = data.train.dataset.indices
    x_train, y_train = collect(torch.utils.data.DataLoader(data.train.dataset, batch_size=64))
    assert torch.equal(y_train, torch.tensor(arrays["train_y"][train_idx]))
    assert not torch.allclose(x_train, normalized(arrays["train_x"][train_idx], CIFAR100_MEAN, CIFAR100_STD))


@pytest.mark.parametrize("dataset, folder", [("mnist", "MNIST/raw"), ("cifar10", "cifar-10-batches-py"),
                                             ("cifar100", "cifar-100-python")])
def test_missing_data_is_one_line_naming_the_folder(tmp_path, dataset, folder):
    with pytest.raises(DataError) as e:
        build_data(dataset, data_root=str(tmp_path))
    message = str(e.value)
    assert "\n" not in message and str(tmp_path / folder) in message and "--download" in message


def test_partly_missing_cifar10_names_the_missing_file(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError, match="data_batch_3"):
        build_data("cifar10", data_root=str(tmp_path))


def test_failed_download_is_one_line(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution\nsecond line")
    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", offline)
    with pytest.raises(DataError) as e:
        build_data("cifar10", data_root=str(tmp_path), download=True)
    assert "\n" not in str(e.value) and str(tmp_path / "cifar-10-batches-py") in str(e.value)


def test_damaged_file_gives_data_error_not_a_traceback(tmp_path):
    write_cifar100(tmp_path)
    (tmp_path / "cifar-100-python" / "train").write_bytes(b"not a pickle")
    with pytest.raises(DataError) as e:
        build_data("cifar100", data_root=str(tmp_path))
    assert "\n" not in str(e.value)


def test_test_subset_is_one_fixed_subset_for_every_seed():
    from eicil.data import build_data
    a = build_data("digits", test_subset=50, seed=0)
    b = build_data("digits", test_subset=50, seed=7)
    full = build_data("digits", seed=0)
    assert len(a.test.dataset) == 50 and list(a.test.dataset.indices) == list(b.test.dataset.indices)
    assert len(full.test.dataset) > 50
    with pytest.raises(ValueError, match="test_subset must be >= 0"):
        build_data("digits", test_subset=-1)
