"""delta_w must equal spikingjelly's STDPLearner on the same sequence."""
import pytest
import torch
from spikingjelly.activation_based import functional, layer, learning
from torch import nn

from eicil.cycle import stdp_targets
from eicil.models import create_model
from eicil.stdp import (SpikeRecorder, delta_w, n_terms, post_neurons, shrink_cosine, stdp_step, trace,
                        weight_dependence)

TAU_PRE, TAU_POST = 2.0, 100.0


def reference(synapse, pre, post, f_pre, f_post):
    sn = nn.Identity()
    learner = learning.STDPLearner("m", synapse, sn, TAU_PRE, TAU_POST, f_pre=f_pre, f_post=f_post)
    synapse(pre)
    sn(post)
    dw = learner.step(on_grad=False)
    learner.close()
    return dw


def spikes(*shape, p=0.3, seed=0):
    return (torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) < p).float()


CONVS = [  # cin, cout, kernel, stride, padding, size, padding_mode
    (3, 5, 3, 1, 1, 8, "zeros"),
    (4, 6, 3, 2, 1, 9, "zeros"),
    (2, 3, 1, 2, 0, 7, "zeros"),
    (3, 4, 5, 1, 2, 6, "reflect"),
    (2, 3, 3, 1, 1, 6, "circular"),
    (2, 2, 3, 3, 0, 10, "zeros"),
    (3, 4, (3, 1), (2, 1), (1, 0), 7, "zeros"),
]


@pytest.mark.parametrize("weight_dep", ["soft", "clamp"])
@pytest.mark.parametrize("shape", CONVS)
def test_conv_matches_spikingjelly(shape, weight_dep):
    cin, cout, k, s, p, size, mode = shape
    torch.manual_seed(1)
    conv = layer.Conv2d(cin, cout, k, stride=s, padding=p, padding_mode=mode, bias=False, step_mode="m")
    conv.weight.data.mul_(3)  # reach |w| > 1 so the clamp matters
    pre = spikes(4, 3, cin, size, size)
    post = spikes(*conv(pre).shape, seed=1)
    f_pre, f_post = weight_dependence(weight_dep)
    want = reference(conv, pre, post, f_pre, f_post)
    got = delta_w(conv, pre, post, tau_pre=TAU_PRE, tau_post=TAU_POST, f_pre=f_pre, f_post=f_post)
    assert got.shape == conv.weight.shape
    assert want.abs().max() > 0
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))


@pytest.mark.parametrize("weight_dep", ["soft", "clamp", None])
def test_linear_matches_spikingjelly(weight_dep):
    lin = layer.Linear(7, 5, step_mode="m")
    pre, post = spikes(6, 4, 7, p=0.4), spikes(6, 4, 5, p=0.4, seed=2)
    f_pre, f_post = weight_dependence(weight_dep) if weight_dep else (None, None)
    kw = dict(f_pre=f_pre, f_post=f_post) if weight_dep else {}
    want = reference(lin, pre, post, **{"f_pre": lambda w: w, "f_post": lambda w: w, **kw})
    got = delta_w(lin, pre, post, tau_pre=TAU_PRE, tau_post=TAU_POST, f_pre=f_pre, f_post=f_post)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_trace_recurrence_and_terms():
    s = torch.tensor([1.0, 0.0, 1.0, 0.0])
    torch.testing.assert_close(trace(s, 2.0), torch.tensor([1.0, 0.5, 1.25, 0.625]))
    torch.testing.assert_close(trace(s, 2.0, reverse=True), torch.tensor([1.25, 0.5, 1.0, 0.0]))
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1)
    assert n_terms(conv, torch.zeros(4, 5, 3, 6, 6)) == 4 * 5 * 36


def test_causal_pair_potentiates_anticausal_depresses():
    lin = nn.Linear(1, 1, bias=False)
    lin.weight.data.fill_(0.5)
    pre, post = torch.zeros(4, 1, 1), torch.zeros(4, 1, 1)
    pre[0], post[1] = 1, 1  # pre before post
    assert delta_w(lin, pre, post, tau_pre=2, tau_post=2, f_pre=lambda w: 1, f_post=lambda w: 1) > 0
    assert delta_w(lin, post, pre, tau_pre=2, tau_post=2, f_pre=lambda w: 1, f_post=lambda w: 1) < 0


def test_post_neurons_follow_execution_order():
    model = create_model("resnet18", in_channels=3, num_classes=4, width=0.125, hidden=8)
    convs = stdp_targets(model, "stdp-conv")
    found = post_neurons(model, torch.rand(2, 1, 3, 8, 8), convs + [model.fc_hidden])
    block = model.features[3][2]  # first block of stage 2: has a downsample conv
    assert found[block.conv1] is block.sn1
    assert found[block.conv2] is block.sn2
    assert found[block.downsample[0]] is block.sn2
    assert found[model.fc_hidden] is model.sn_hidden
    with pytest.raises(ValueError, match="no spiking neuron"):
        post_neurons(model, torch.rand(2, 1, 3, 8, 8), [model.fc_out])


def test_recorder_keeps_references_without_graphs():
    model = create_model("csnn", in_channels=1, num_classes=10, width=0.5, hidden=16)
    x = torch.rand(3, 2, 1, 8, 8)
    pairs = post_neurons(model, x, [model.fc_hidden])
    functional.reset_net(model)
    seen = {}
    model.sn_hidden.register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    rec = SpikeRecorder(pairs)
    model(x).sum().backward()
    (syn, pre, post), = list(rec.records())
    assert post.data_ptr() == seen["out"].data_ptr()  # the same storage: nothing copied
    assert not pre.requires_grad and not post.requires_grad
    assert set(post.unique().tolist()) <= {0.0, 1.0}
    rec.clear()
    assert list(rec.records()) == []
    rec.close()
    functional.reset_net(model)
    model(x)
    assert list(rec.records()) == []


def recorded_fc_hidden():
    """A seeded csnn after one forward pass (T=4, batch 8) with fc_hidden's spikes recorded."""
    torch.manual_seed(0)
    model = create_model("csnn", in_channels=1, num_classes=10, width=0.5, hidden=16)
    x = torch.rand(4, 8, 1, 8, 8)
    rec = SpikeRecorder(post_neurons(model, x, [model.fc_hidden]))
    functional.reset_net(model)
    model(x)
    (_, pre, post), = list(rec.records())
    return model, rec, pre, post


@pytest.mark.parametrize("weight_dep", ["soft", "clamp"])
def test_stdp_step_applies_normalised_update(weight_dep):
    model, rec, pre, post = recorded_fc_hidden()
    assert pre.sum() > 0 and post.sum() > 0  # spikes on both sides: the step cannot be zero by accident
    f_pre, f_post = weight_dependence(weight_dep)
    want = delta_w(model.fc_hidden, pre, post, tau_pre=2, tau_post=100, f_pre=f_pre, f_post=f_post)
    w0 = model.fc_hidden.weight.detach().clone()
    b0 = model.fc_hidden.bias.detach().clone()
    sizes = stdp_step(rec, lr=0.5, tau_pre=2, tau_post=100, weight_dep=weight_dep)
    moved = model.fc_hidden.weight.detach() - w0
    assert moved.abs().max() > 0
    torch.testing.assert_close(moved, 0.5 * want / (4 * 8))  # n_terms = T x batch for a Linear
    assert sizes[model.fc_hidden].item() == pytest.approx(moved.norm().item(), rel=1e-5)
    torch.testing.assert_close(model.fc_hidden.bias.detach(), b0)  # STDP never touches bias
    assert list(rec.records()) == []


def test_bad_weight_dependence():
    with pytest.raises(ValueError, match="soft or clamp"):
        weight_dependence("hard")


def test_post_neurons_leaves_batchnorm_statistics_alone():
    model = create_model("csnn", in_channels=1, num_classes=10, width=0.5, hidden=16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    post_neurons(model, torch.rand(2, 4, 1, 8, 8), [model.fc_hidden])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training


def test_shrink_step_has_the_stdp_size_along_minus_w():
    model, rec, pre, post = recorded_fc_hidden()
    f_pre, f_post = weight_dependence("clamp")
    want = delta_w(model.fc_hidden, pre, post, tau_pre=2, tau_post=100, f_pre=f_pre, f_post=f_post)
    w0 = model.fc_hidden.weight.detach().clone()
    sizes = stdp_step(rec, lr=0.5, tau_pre=2, tau_post=100, weight_dep="clamp", normalise=False, shrink=True)
    moved = model.fc_hidden.weight.detach() - w0
    assert moved.norm().item() == pytest.approx(0.5 * want.norm().item(), rel=1e-5)  # STDP's size ...
    torch.testing.assert_close(moved / moved.norm(), -w0 / w0.norm())  # ... along -w
    assert sizes[model.fc_hidden].item() == pytest.approx(moved.norm().item(), rel=1e-5)


def test_recorder_switches_choose_what_is_recorded():
    torch.manual_seed(0)
    model = create_model("csnn", in_channels=1, num_classes=10, width=0.5, hidden=16)
    x = torch.rand(2, 4, 1, 8, 8)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    rec = SpikeRecorder(post_neurons(model, x, [*convs, model.fc_hidden]))
    rec.record(convs[1:])
    functional.reset_net(model)
    model(x)
    assert [syn for syn, _, _ in rec.records()] == convs[1:] == rec.recording()
    with pytest.raises(KeyError):
        rec.spikes(model.fc_hidden)
    pre, post = rec.spikes(convs[1])
    assert pre.shape[:2] == post.shape[:2] == (2, 4)
    rec.record([])
    rec.clear()
    functional.reset_net(model)
    model(x)
    assert list(rec.records()) == [] and rec.pre == {} and rec.post == {}
    with pytest.raises(ValueError, match="no hooks"):
        rec.record([model.fc_out])


def test_shrink_cosine_reads_the_share_along_minus_w():
    w = torch.tensor([[3.0, 4.0]])
    assert shrink_cosine(-2 * w, w).item() == pytest.approx(1.0)  # pure shrinkage
    assert shrink_cosine(w, w).item() == pytest.approx(-1.0)  # pure growth
    assert shrink_cosine(torch.tensor([[4.0, -3.0]]), w).item() == pytest.approx(0.0)  # orthogonal
    assert shrink_cosine(torch.tensor([[-3.0, 1.0]]), w).item() == pytest.approx(5 / (10 ** 0.5 * 5))
