import pytest
import torch
from spikingjelly.activation_based import functional

from spikingjelly.activation_based import layer, neuron
from torch import nn

from eicil.cycle import stdp_targets
from eicil.models import MODELS, create_model, ei_split


@pytest.mark.parametrize("name,size", [("csnn", 8), ("csnn", 28), ("csnn", 32), ("resnet18", 8), ("vgg11", 8),
                                       ("ei_net", 8), ("vgg11", 28)])
def test_forward_shape_and_spikes(name, size):
    torch.manual_seed(0)
    model = create_model(name, in_channels=1, num_classes=7, width=0.125, hidden=16, image_size=size)
    fired = []
    for m in model.modules():
        if isinstance(m, neuron.IFNode):
            m.register_forward_hook(lambda mod, i, o: fired.append(o.detach()))
    out = model(3 * torch.rand(2, 3, 1, size, size))
    assert out.shape == (3, 7)
    assert fired and all(set(s.unique().tolist()) <= {0.0, 1.0} for s in fired)  # spikes are 0/1
    assert sum(s.sum().item() for s in fired) > 0  # and some neuron does fire
    out.sum().backward()
    assert model.fc_hidden.weight.grad is not None and model.fc_hidden.weight.grad.abs().sum() > 0
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
    convs = sum(m.weight.numel() for m in stdp_targets(model, "stdp-conv"))
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


def test_ei_net_layout():
    """EI-Net: stem conv -> BN -> IF -> max-pool; each block conv -> max-pool -> BN -> IF, twice."""
    model = create_model("ei_net", in_channels=3, num_classes=10, width=0.125)
    stem = [type(m) for m in model.features[:4]]
    assert stem == [layer.Conv2d, layer.BatchNorm2d, neuron.IFNode, layer.MaxPool2d]
    assert model.features[3].stride == 2
    blocks = list(model.features[4])
    assert len(blocks) == 8
    for block in blocks:
        order = [block.conv1, block.pool1, block.bn1, block.sn1, block.conv2, block.pool2, block.bn2, block.sn2]
        kinds = [layer.Conv2d, layer.MaxPool2d, layer.BatchNorm2d, neuron.IFNode] * 2
        assert all(isinstance(m, k) for m, k in zip(order, kinds))
        assert block.pool1.kernel_size == 3 and block.pool1.stride == 1 and block.pool1.padding == 1
    calls = []
    for m in blocks[0].modules():
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.BatchNorm2d, neuron.IFNode)):
            m.register_forward_pre_hook(lambda mod, _: calls.append(type(mod)))
    model(torch.rand(2, 1, 3, 16, 16))
    assert calls == [layer.Conv2d, layer.MaxPool2d, layer.BatchNorm2d, neuron.IFNode,
                     layer.Conv2d, layer.MaxPool2d, layer.BatchNorm2d, neuron.IFNode]  # run in that order


@pytest.mark.parametrize("size,side", [(8, 2), (28, 7), (32, 8)])
def test_csnn_head_sees_the_whole_pooled_map(size, side):
    model = create_model("csnn", in_channels=1, num_classes=10, image_size=size)
    assert model.fc_hidden.in_features == 64 * side * side
