"""Specification of helpers/summary.py: shapes layer by layer, from the modules themselves."""

import pytest
import torch
from torch import nn

from helpers.summary import layer_shapes, print_shapes


class TinyD(nn.Module):
    """A D-shaped network: two strided convs (the second with batch norm), then a linear layer."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 4, 2, 1)
        self.conv2 = nn.Sequential(nn.Conv2d(4, 8, 4, 2, 1, bias=False), nn.BatchNorm2d(8))
        self.fc = nn.Linear(8 * 2 * 2, 1)

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        return self.fc(x.flatten(1))


def test_layer_shapes_records_each_sub_module_in_the_order_it_ran():
    rows, output = layer_shapes(TinyD(), torch.rand(5, 3, 8, 8) * 2 - 1)
    assert [(name, kind, shape) for name, kind, shape, _ in rows] == [
        ("conv1", "Conv2d", (5, 4, 4, 4)),
        ("conv2", "Conv2d + BatchNorm2d", (5, 8, 2, 2)),
        ("fc", "Linear", (5, 1)),
    ]
    assert [count for *_, count in rows] == [3 * 4 * 16 + 4, 4 * 8 * 16 + 16, 33]
    assert output.shape == (5, 1)


def test_layer_shapes_leaves_the_model_as_it_was():
    model = TinyD().train()
    before = model.conv2[1].running_mean.clone()
    layer_shapes(model, torch.rand(5, 3, 8, 8) + 3)  # a batch that would move batch-norm statistics
    assert model.training and torch.equal(model.conv2[1].running_mean, before)
    assert not model.conv1._forward_hooks  # the hooks are removed


def test_a_model_without_sub_modules_is_one_row():
    rows, _ = layer_shapes(nn.Linear(6, 2), torch.rand(3, 6))
    assert [(name, shape) for name, _, shape, _ in rows] == [("Linear", (3, 2))]


def test_print_shapes_prints_input_each_layer_and_the_parameter_count(capsys):
    model = TinyD()
    print_shapes(model, torch.rand(5, 3, 8, 8))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "TinyD, layer by layer:"
    assert lines[1].split() == ["input", "->", "(5,", "3,", "8,", "8)"]
    assert "conv2" in lines[3] and "Conv2d + BatchNorm2d" in lines[3] and "(5, 8, 2, 2)" in lines[3]
    assert lines[-1].strip() == f"{sum(p.numel() for p in model.parameters()):,} parameters in all"


def test_print_shapes_names_a_wrong_argument():
    with pytest.raises(TypeError, match="expects an nn.Module, got function"):
        print_shapes(lambda x: x, torch.rand(1))
    with pytest.raises(TypeError, match="input batch as a tensor, got list"):
        print_shapes(TinyD(), [1, 2])


class OneSequential(nn.Module):
    """A whole network in one Sequential, as part 2 writes its networks."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 4, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 4, 1, 0), nn.Flatten()
        )

    def forward(self, x):
        return self.net(x)


def test_a_network_in_one_long_sequential_is_shown_layer_by_layer():
    rows, output = layer_shapes(OneSequential(), torch.rand(2, 3, 8, 8))
    assert [(name, kind, shape) for name, kind, shape, _ in rows] == [
        ("net.0", "Conv2d", (2, 4, 4, 4)),
        ("net.1", "LeakyReLU", (2, 4, 4, 4)),
        ("net.2", "Conv2d", (2, 1, 1, 1)),
        ("net.3", "Flatten", (2, 1)),
    ]
    assert output.shape == (2, 1)
