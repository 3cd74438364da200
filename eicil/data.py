"""Datasets as train/val/test DataLoaders.

`digits` (scikit-learn's bundled 8x8 digits) and `fake` need no files; `mnist`, `cifar10` and
`cifar100` are read through torchvision from a data root, with the paper profile's transforms.
Validation is always carved from the training set with a generator seeded by `seed`; test sets never
depend on `seed`, so runs with different seeds are scored on the same images.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset
from torchvision import datasets
from torchvision import transforms as T

DATASETS = ("digits", "fake", "mnist", "cifar10", "cifar100")


class DataError(ValueError):
    """Bad dataset name, bad split settings or missing files; str(e) is one line for the user."""


@dataclass
class Data:
    train: DataLoader  # (x float32 [B,C,H,W], y int64 [B]); shuffled with torch's global RNG
    val: DataLoader  # carved from the training set; no shuffle, no augmentation
    test: DataLoader  # no shuffle, no augmentation
    in_channels: int
    num_classes: int
    image_size: int  # H (== W)


class _Source(NamedTuple):
    train: Dataset  # augmented when asked
    train_plain: Dataset  # the same examples, never augmented: what validation indexes
    test: Dataset
    in_channels: int
    num_classes: int
    image_size: int


class _CIFAR10(datasets.CIFAR10):
    # torchvision compares each file's md5 with the official release; checking presence only lets
    # re-pickled copies and small hand-made files (as in the tests) load too.
    def _check_integrity(self) -> bool:
        folder = Path(self.root) / self.base_folder
        return all((folder / name).is_file() for name, _ in self.train_list + self.test_list)

    def _load_meta(self) -> None:
        with open(Path(self.root) / self.base_folder / self.meta["filename"], "rb") as f:
            self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}


class _CIFAR100(_CIFAR10, datasets.CIFAR100):
    """CIFAR-100's file names with the presence-only checks of `_CIFAR10`."""


@dataclass(frozen=True)
class _Vision:
    cls: Callable[..., Dataset]
    folder: str  # under data_root, where torchvision reads the files
    files: tuple[str, ...]
    in_channels: int
    num_classes: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: tuple[Callable, ...]  # the paper profile's training augmentation


_CROP_FLIP = (T.RandomCrop(32, padding=4), T.RandomHorizontalFlip())

_VISION = {
    # MNIST is not subclassed: torchvision derives its folder from the class name (root/MNIST/raw).
    # A flip changes a digit's identity, so MNIST only ever gets small shifts.
    "mnist": _Vision(datasets.MNIST, "MNIST/raw",
                     ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                      "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
                     1, 10, 28, (0.1307,), (0.3081,), (T.RandomCrop(28, padding=2),)),
    "cifar10": _Vision(_CIFAR10, "cifar-10-batches-py",
                       tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta"),
                       3, 10, 32, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), _CROP_FLIP),
    "cifar100": _Vision(_CIFAR100, "cifar-100-python", ("train", "test", "meta"),
                        3, 100, 32, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762),
                        _CROP_FLIP + (T.RandomRotation(15),)),
}


def _one_line(error: BaseException) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())


def _vision(dataset: str, root: Path, download: bool, augment: bool) -> _Source:
    spec = _VISION[dataset]
    folder = root / spec.folder

    def first_missing() -> str | None:
        return next((name for name in spec.files if not (folder / name).is_file()), None)

    if download and first_missing() is not None:
        try:
            spec.cls(str(root), train=True, download=True)
        # No network, a dead mirror or a bad archive all leave the user with the same remedy.
        except Exception as e:
            raise DataError(f"downloading {dataset} into {folder} failed ({_one_line(e)}); "
                            f"copy the {dataset} files into {folder} instead") from e
    missing = first_missing()
    if missing is not None:
        raise DataError(f"{dataset} not found: {folder / missing} is missing; run with --download on a machine "
                        f"with network access, or copy the {dataset} files ({', '.join(spec.files)}) into {folder}")

    plain_tf = T.Compose([T.ToTensor(), T.Normalize(spec.mean, spec.std)])
    try:
        plain = spec.cls(str(root), train=True, transform=plain_tf)
        # A second object over the same files, so validation (which indexes `plain`) is never augmented.
        train = spec.cls(str(root), train=True, transform=T.Compose([*spec.augment, plain_tf])) if augment else plain
        test = spec.cls(str(root), train=False, transform=plain_tf)
    # Whatever torchvision trips on in a damaged file, the user needs the folder, not its traceback.
    except Exception as e:
        raise DataError(f"could not read {dataset} from {folder}: {_one_line(e)}") from e
    return _Source(train, plain, test, spec.in_channels, spec.num_classes, spec.image_size)


def _digits() -> _Source:
    digits = load_digits()
    x = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(digits.target, dtype=torch.int64)
    # No official test split: a fixed stratified 20% (seed 0, never `seed`) so every run is scored alike.
    train, test = train_test_split(np.arange(len(y)), test_size=0.2, stratify=digits.target, random_state=0)
    # `augment` is ignored: flips change a digit's identity and 8x8 leaves no room for crops.
    train_set = TensorDataset(x[train], y[train])
    return _Source(train_set, train_set, TensorDataset(x[test], y[test]), 1, 10, 8)


def _fake(shape: tuple[int, int, int], classes: int, n_train: int, n_test: int) -> _Source:
    channels, height, width = shape
    if height != width or classes < 2:
        raise DataError(f"fake data needs square images and >= 2 classes, got shape {shape}, {classes} classes")
    # A fixed generator: the data (test set included) must not change with the run's seed.
    gen = torch.Generator().manual_seed(1234)
    prototypes = torch.rand(classes, *shape, generator=gen)

    def sample(n: int) -> TensorDataset:
        y = torch.arange(n) % classes
        # Noise as strong as the prototypes' own spread: learnable, but not from a pixel or two.
        noise = torch.randn(n, *shape, generator=gen) * prototypes.std()
        return TensorDataset((prototypes[y] + noise).clamp(0, 1), y)

    train_set = sample(n_train)
    return _Source(train_set, train_set, sample(n_test), channels, classes, height)


def _split(n: int, val_fraction: float, seed: int, train_subset: int) -> tuple[list[int], list[int]]:
    """(train, val) indices into the training set."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = max(1, round(n * val_fraction))
    if n_val >= n:
        raise DataError(f"{n} training examples are too few to carve a validation split from")
    train = order[n_val:]
    return (train[:train_subset] if train_subset else train), order[:n_val]


def _test_subset(test: Dataset, n: int) -> Dataset:
    """The first n of one fixed shuffle of the test set (seed 0): the same images for every run."""
    if not n or n >= len(test):
        return test
    return Subset(test, torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[:n].tolist())


def check_data(dataset: str, *, val_fraction: float = 0.1, batch_size: int = 64, train_subset: int = 0,
               test_subset: int = 0, num_workers: int = 0) -> None:
    """The settings build_data() takes, checked without touching any file."""
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; choose one of: {', '.join(DATASETS)}")
    # The trainer selects epochs by validation accuracy, so an empty validation split is no option.
    if not 0 < val_fraction < 0.5:
        raise DataError(f"val_fraction must be in (0, 0.5), got {val_fraction}")
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    if train_subset < 0:
        raise DataError(f"train_subset must be >= 0 (0 = all), got {train_subset}")
    if test_subset < 0:
        raise DataError(f"test_subset must be >= 0 (0 = all), got {test_subset}")
    if num_workers < 0:
        raise DataError(f"num_workers must be >= 0, got {num_workers}")


def build_data(dataset: str, *, data_root: str = "data", download: bool = False, batch_size: int = 64,
               val_fraction: float = 0.1, seed: int = 0, augment: bool = False, train_subset: int = 0,
               test_subset: int = 0, num_workers: int = 0, pin_memory: bool = False,
               fake_shape: tuple[int, int, int] = (3, 32, 32), fake_classes: int = 10,
               fake_train: int = 600, fake_test: int = 200) -> Data:
    check_data(dataset, val_fraction=val_fraction, batch_size=batch_size, train_subset=train_subset,
               test_subset=test_subset, num_workers=num_workers)
    if dataset == "digits":
        source = _digits()
    elif dataset == "fake":
        source = _fake(fake_shape, fake_classes, fake_train, fake_test)
    else:
        source = _vision(dataset, Path(data_root), download, augment)
    train_idx, val_idx = _split(len(source.train_plain), val_fraction, seed, train_subset)

    def loader(ds: Dataset, shuffle: bool) -> DataLoader:
        # No generator: shuffling draws from torch's global RNG, which the trainer reseeds each epoch
        # so that a resumed run sees the same order.
        return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, drop_last=False, num_workers=num_workers,
                          pin_memory=pin_memory and torch.cuda.is_available(), persistent_workers=False)

    return Data(train=loader(Subset(source.train, train_idx), True),
                val=loader(Subset(source.train_plain, val_idx), False),
                test=loader(_test_subset(source.test, test_subset), False),
                in_channels=source.in_channels, num_classes=source.num_classes, image_size=source.image_size)
