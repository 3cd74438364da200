"""The real-data paths on the offline copies of MNIST and CIFAR-10 (JPEG) that sit beside a checkout
in ../shared/data: the loaders, the csnn at 28x28 and 32x32, and one short training run each."""
import subprocess
import sys
from pathlib import Path

import pytest

from eicil.config import config_from
from eicil.data import build_data
from eicil.train import train

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    if not (SHARED / "prepare.py").exists():
        pytest.skip(f"no offline data beside this checkout ({SHARED})")
    root = tmp_path_factory.mktemp("data")
    subprocess.run([sys.executable, str(SHARED / "prepare.py"), str(root)], check=True, capture_output=True)
    return root


@pytest.mark.parametrize("dataset,channels,size,n_train,n_test", [
    ("mnist", 1, 28, 60000, 10000), ("cifar10", 3, 32, 50000, 10000)])
def test_loaders_read_the_full_sets(data_root, dataset, channels, size, n_train, n_test):
    data = build_data(dataset, data_root=str(data_root), batch_size=32, seed=0)
    x, y = next(iter(data.train))
    assert (data.in_channels, data.image_size, data.num_classes) == (channels, size, 10)
    assert x.shape == (32, channels, size, size) and 0 <= y.min() and y.max() <= 9
    assert len(data.train.dataset) + len(data.val.dataset) == n_train and len(data.test.dataset) == n_test


@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_a_short_run_learns_on_real_images(data_root, tmp_path, dataset):
    done = train(config_from("cpu", dataset=dataset, data_root=str(data_root), epochs=1, train_subset=2000,
                             timesteps=2, val_fraction=0.02, method="gsgi", k=-2, out=str(tmp_path)),
                 progress=False)
    assert done["status"] == "complete" and done["test_acc"] > 0.2  # chance is 0.1
    assert done["stdp_dose"] > 0  # the one epoch was stdp-bw-gs
