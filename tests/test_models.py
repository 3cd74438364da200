import pytest
import torch
from spikingjelly.activation_based import functional

from eicil.models import MODELS, create_model, ei_split, stdp_layers


@pytest.mark.parametrize("name,size", [("csnn", 8), ("resnet18", 8), ("vgg11", 8), ("ei_net", 8), ("vgg11", 28)])
def test_forward_shape_and_spikes(name, size):
    model = create_model(name, in_channels=1, num_classes=7, width=0.125, hidden=16)
    out = model(torch.rand(2, 3, 1, size, size))
    assert out.shape == (3, 7)
    out.sum().backward()
    assert model.fc_hidden.weight.grad is not None
    functional.reset_net(model)


def test_resnet_stems():
    x = torch.rand(2, 2, 3, 32, 32)
    a = create_model("resnet18", in_channels=3, num_classes=10, width=0.125, stem="cifar")
    b = create_model("resnet18", in_channels=3, num_classes=10, width=0.125, stem="imagenet")
    assert a.features[0].kernel_size == (3, 3) and b.features[0].kernel_size == (7, 7)
    assert a(x).shape == b(x).shape == (2, 10)
    with pytest.raises(ValueError, match="stem"):
        create_model("resnet18", in_channels=3, num_classes=10, stem="tiny")


def test_full_size_resnet18_has_resnet18_parameter_count():
    model = create_model("resnet18", in_channels=3, num_classes=10, hidden=256)
    convs = sum(m.weight.numel() for m in stdp_layers(model, "stdp-conv"))
    assert 10.9e6 < convs < 11.2e6  # torchvision's resnet18 convs with a 3x3 stem


def test_ei_split_counts_the_stdp_layers():
    model = create_model("ei_net", in_channels=3, num_classes=10, width=0.25)
    bw = ei_split(model, "stdp-bw")
    assert bw["params_inhibitory"] == model.fc_hidden.weight.numel() and bw["layers_inhibitory"] == 1
    conv = ei_split(model, "stdp-conv")
    assert conv["layers_inhibitory"] == 1 + 16 + 3  # stem, two per block, three downsamples
    assert 0 < conv["layer_share_inhibitory"] < 1 and 0 < conv["param_share_inhibitory"] < 1
    assert ei_split(model, "gs")["params_inhibitory"] == 0


def test_registry_errors():
    assert set(MODELS) == {"csnn", "resnet18", "vgg11", "ei_net"}
    with pytest.raises(ValueError, match="unknown model 'resnet19'"):
        create_model("resnet19", in_channels=3, num_classes=10)
    with pytest.raises(ValueError, match="width"):
        create_model("csnn", in_channels=3, num_classes=10, width=0)
