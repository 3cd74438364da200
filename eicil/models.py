"""Spiking models in spikingjelly multi-step mode: input [T, B, C, H, W] -> logits [B, classes].

Every model ends in `Linear(features, hidden) -> IF -> Linear(hidden, classes)`: the first Linear
is the "last spiking Linear layer" that `stdp-bw` trains (it needs a neuron after it so STDP has
post-synaptic spikes); the readout stays gradient-trained. Logits are the mean over time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from spikingjelly.activation_based import layer, neuron, surrogate
from torch import nn

from .cycle import MECHANISMS, stdp_targets


@dataclass
class NeuronConfig:
    v_threshold: float = 1.0  # IF firing threshold
    surrogate_alpha: float = 4.0  # steepness of the sigmoid surrogate gradient
    detach_reset: bool = False  # released code keeps the reset in the graph


def make_neuron(cfg: NeuronConfig) -> nn.Module:
    return neuron.IFNode(
        v_threshold=cfg.v_threshold, v_reset=0.0, detach_reset=cfg.detach_reset,
        surrogate_function=surrogate.Sigmoid(alpha=cfg.surrogate_alpha), step_mode="m",
    )


def conv(cin: int, cout: int, k: int, stride: int = 1, padding: int = 0) -> nn.Module:
    return layer.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=False, step_mode="m")


def bn(c: int) -> nn.Module:
    return layer.BatchNorm2d(c, step_mode="m")


STEMS = ("cifar", "imagenet")  # resnet18: 3x3 s1 (CIFAR-sized) or 7x7 s2 + max-pool (spikingjelly's stock)


def ch(c: int, width: float) -> int:
    return max(1, round(c * width))


class SpikingNet(nn.Module):
    """features -> flatten -> fc_hidden -> IF -> fc_out; logits averaged over T."""

    def __init__(self, features: nn.Module, n_features: int, hidden: int, num_classes: int,
                 ncfg: NeuronConfig):
        super().__init__()
        self.features = features
        self.flatten = layer.Flatten(step_mode="m")
        self.fc_hidden = layer.Linear(n_features, hidden, step_mode="m")
        self.sn_hidden = make_neuron(ncfg)
        self.fc_out = layer.Linear(hidden, num_classes, step_mode="m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flatten(self.features(x))
        return self.fc_out(self.sn_hidden(self.fc_hidden(x))).mean(0)


class BasicBlock(nn.Module):
    """conv3x3 -> [pool] -> BN -> IF -> conv3x3 -> [pool] -> BN -> (+shortcut) -> IF.

    `pool=True` gives the EI-Net block (MaxPool 3, stride 1, pad 1 after each conv)."""

    def __init__(self, cin: int, cout: int, stride: int, ncfg: NeuronConfig, pool: bool = False):
        super().__init__()
        maybe_pool = (lambda: layer.MaxPool2d(3, 1, 1, step_mode="m")) if pool else nn.Identity
        self.conv1, self.pool1, self.bn1 = conv(cin, cout, 3, stride, 1), maybe_pool(), bn(cout)
        self.sn1 = make_neuron(ncfg)
        self.conv2, self.pool2, self.bn2 = conv(cout, cout, 3, 1, 1), maybe_pool(), bn(cout)
        self.downsample = (
            nn.Sequential(conv(cin, cout, 1, stride), bn(cout))
            if stride != 1 or cin != cout else nn.Identity()
        )
        self.sn2 = make_neuron(ncfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.sn1(self.bn1(self.pool1(self.conv1(x))))
        out = self.bn2(self.pool2(self.conv2(out)))
        return self.sn2(out + self.downsample(x))


def _stages(c0: int, width: float, ncfg: NeuronConfig, pool: bool) -> tuple[nn.Sequential, int]:
    blocks, cin = [], c0
    for i, c in enumerate((64, 128, 256, 512)):
        cout = ch(c, width)
        for j in range(2):
            blocks.append(BasicBlock(cin, cout, 2 if (i > 0 and j == 0) else 1, ncfg, pool))
            cin = cout
    return nn.Sequential(*blocks), cin


def resnet18(in_channels: int, num_classes: int, width: float = 1.0, hidden: int = 256,
             stem: str = "cifar", ncfg: NeuronConfig | None = None) -> SpikingNet:
    ncfg = ncfg or NeuronConfig()
    c0 = ch(64, width)
    if stem == "cifar":
        head = [conv(in_channels, c0, 3, 1, 1), bn(c0), make_neuron(ncfg)]
    elif stem == "imagenet":
        head = [conv(in_channels, c0, 7, 2, 3), bn(c0), make_neuron(ncfg),
                layer.MaxPool2d(3, 2, 1, step_mode="m")]
    else:
        raise ValueError(f"unknown stem {stem!r}; choose {' or '.join(STEMS)}")
    stages, c = _stages(c0, width, ncfg, pool=False)
    features = nn.Sequential(*head, stages, layer.AdaptiveAvgPool2d(1, step_mode="m"))
    return SpikingNet(features, c, hidden, num_classes, ncfg)


VGG11_CFG = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


def vgg11(in_channels: int, num_classes: int, width: float = 1.0, hidden: int = 256,
          ncfg: NeuronConfig | None = None) -> SpikingNet:
    ncfg = ncfg or NeuronConfig()
    mods, cin = [], in_channels
    for v in VGG11_CFG:
        if v == "M":
            # ceil_mode keeps 1x1 maps at 1x1, so 8x8 digits and 28x28 MNIST pass all five pools
            mods.append(layer.MaxPool2d(2, 2, ceil_mode=True, step_mode="m"))
        else:
            mods += [conv(cin, ch(v, width), 3, 1, 1), bn(ch(v, width)), make_neuron(ncfg)]
            cin = ch(v, width)
    mods.append(layer.AdaptiveAvgPool2d(1, step_mode="m"))
    return SpikingNet(nn.Sequential(*mods), cin, hidden, num_classes, ncfg)


def ei_net(in_channels: int, num_classes: int, width: float = 1.0, hidden: int = 256,
           ncfg: NeuronConfig | None = None) -> SpikingNet:
    """The paper's Excitatory-Inhibition Net (released MyNet.py), with the shared two-Linear head."""
    ncfg = ncfg or NeuronConfig()
    c0 = ch(64, width)
    stem = [conv(in_channels, c0, 3, 1, 1), bn(c0), make_neuron(ncfg),
            layer.MaxPool2d(3, 2, 1, step_mode="m")]
    stages, c = _stages(c0, width, ncfg, pool=True)
    features = nn.Sequential(*stem, stages, layer.AdaptiveAvgPool2d(1, step_mode="m"))
    return SpikingNet(features, c, hidden, num_classes, ncfg)


def csnn(in_channels: int, num_classes: int, width: float = 1.0, hidden: int = 128,
         ncfg: NeuronConfig | None = None, image_size: int = 8) -> SpikingNet:
    """Two conv blocks: small enough to train on a CPU in seconds.

    The head sees the whole pooled map (2x2 for 8x8 digits, 7x7 for MNIST, 8x8 for CIFAR): an average
    pool down to 2x2 threw most of a 28x28 digit away. MNIST, cpu profile, 3 epochs on 10,000 digits,
    full test set: 16/32 channels 96.5%, 32/32 96.9%, 32/64 97.3% (README, Decisions)."""
    ncfg = ncfg or NeuronConfig()
    c1, c2 = ch(32, width), ch(64, width)
    features = nn.Sequential(
        conv(in_channels, c1, 3, 1, 1), bn(c1), make_neuron(ncfg),
        layer.MaxPool2d(2, 2, ceil_mode=True, step_mode="m"),
        conv(c1, c2, 3, 1, 1), bn(c2), make_neuron(ncfg),
        layer.MaxPool2d(2, 2, ceil_mode=True, step_mode="m"),
    )
    side = math.ceil(math.ceil(image_size / 2) / 2)
    return SpikingNet(features, c2 * side * side, hidden, num_classes, ncfg)


MODELS = {"csnn": csnn, "resnet18": resnet18, "vgg11": vgg11, "ei_net": ei_net}


def check_model(name: str, width: float = 1.0, hidden: int = 1, stem: str = "cifar") -> None:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width}")
    if hidden < 1:
        raise ValueError(f"hidden must be >= 1, got {hidden}")
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}; choose {' or '.join(STEMS)}")


def create_model(name: str, *, in_channels: int, num_classes: int, width: float = 1.0,
                 hidden: int | None = None, stem: str = "cifar", ncfg: NeuronConfig | None = None,
                 image_size: int = 8) -> SpikingNet:
    """A model of the registry; image_size (H == W of the input) sizes csnn's head, the others pool
    globally and ignore it."""
    check_model(name, width, hidden or 1, stem)
    kwargs = dict(in_channels=in_channels, num_classes=num_classes, width=width, ncfg=ncfg)
    if hidden is not None:
        kwargs["hidden"] = hidden
    if name == "resnet18":
        kwargs["stem"] = stem
    if name == "csnn":
        kwargs["image_size"] = image_size
    return MODELS[name](**kwargs)


WEIGHTED = (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d)


def ei_split(model: SpikingNet, mechanism: str) -> dict:
    """Share of parameters and of layers (conv, linear, BN, pooling) that STDP trains."""
    inhibitory = stdp_targets(model, mechanism) if MECHANISMS[mechanism].move == "stdp" else []
    n_params = sum(p.numel() for p in model.parameters())
    n_inh = sum(m.weight.numel() for m in inhibitory)
    layers = [m for m in model.modules() if isinstance(m, WEIGHTED)]
    return {
        "mechanism": mechanism,
        "params_inhibitory": n_inh, "params_total": n_params,
        "param_share_inhibitory": n_inh / n_params,
        "layers_inhibitory": len(inhibitory), "layers_total": len(layers),
        "layer_share_inhibitory": len(inhibitory) / len(layers),
    }
