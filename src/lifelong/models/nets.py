"""Reference networks (MLP, small CNN) and the growing classifier head."""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from lifelong.errors import ConfigError
from lifelong.registry import Registry

#: model name -> factory(stream, **params); the language models of ``lifelong.hf.models`` load on first use
MODELS: Registry = Registry("model", extensions=("lifelong.hf.models",))


class IncrementalClassifier(nn.Module):
    """A backbone plus a linear head that grows as new classes arrive.

    ``adapt(classes)`` adds output units up to ``max(classes) + 1``, copying the
    existing units' weights; it returns True when parameters changed (the
    optimiser must then be rebuilt, which the loop does).
    """

    def __init__(self, backbone: nn.Module, feature_dim: int, initial_classes: int = 0):
        super().__init__()
        self.backbone = backbone
        self.feature_dim = int(feature_dim)
        self.head = nn.Linear(self.feature_dim, max(1, int(initial_classes)))
        self.num_outputs = int(initial_classes)

    def features(self, x: Tensor) -> Tensor:
        return self.backbone(x)

    def forward(self, x: Tensor) -> Tensor:
        # All allocated units are returned; the objective masks the classes not
        # seen yet, so an untrained model can still be assessed (forward transfer).
        return self.head(self.backbone(x))

    @torch.no_grad()
    def adapt(self, classes: Sequence[int]) -> bool:
        need = max(classes) + 1 if len(classes) else 0
        if need <= self.num_outputs:
            return False
        old = self.head
        if need > old.out_features:
            new = nn.Linear(self.feature_dim, need).to(old.weight.device, old.weight.dtype)
            k = self.num_outputs
            if k:
                new.weight[:k] = old.weight[:k]
                new.bias[:k] = old.bias[:k]
            self.head = new
        self.num_outputs = need
        return True

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):  # type: ignore[override]
        # A checkpoint may hold a larger head than a freshly built model: grow first.
        w = state_dict.get("head.weight")
        if w is not None and w.shape[0] != self.head.out_features:
            self.head = nn.Linear(self.feature_dim, w.shape[0]).to(self.head.weight.device)
        if "num_outputs" in state_dict:
            state_dict = dict(state_dict)
            self.num_outputs = int(state_dict.pop("num_outputs"))
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def state_dict(self, *args, **kwargs):  # type: ignore[override]
        sd = super().state_dict(*args, **kwargs)
        sd["num_outputs"] = torch.tensor(self.num_outputs)
        return sd


class MLP(nn.Module):
    """Fully connected ReLU network over flattened inputs (the backbone of most CL benchmarks)."""

    def __init__(self, input_dim: int, hidden: Sequence[int] = (256, 256), dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        d = int(input_dim)
        for h in hidden:
            layers += [nn.Linear(d, int(h)), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            d = int(h)
        self.net = nn.Sequential(*layers)
        self.out_dim = d

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class SmallCNN(nn.Module):
    """Two conv blocks and a linear layer, for 1-D (mnist1d) or 2-D (images) inputs."""

    def __init__(self, input_shape: Sequence[int], channels: Sequence[int] = (32, 64), out_dim: int = 128):
        super().__init__()
        shape = tuple(int(s) for s in input_shape)
        if len(shape) == 1:
            shape = (1, shape[0])
        conv = nn.Conv1d if len(shape) == 2 else nn.Conv2d
        pool = nn.MaxPool1d if len(shape) == 2 else nn.MaxPool2d
        c_in = shape[0]
        layers: list[nn.Module] = []
        for c in channels:
            layers += [conv(c_in, int(c), 3, padding=1), nn.ReLU(), pool(2)]
            c_in = int(c)
        self.input_shape = shape
        self.conv = nn.Sequential(*layers)
        with torch.no_grad():
            n = self.conv(torch.zeros(1, *shape)).numel()
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(n, out_dim), nn.ReLU())
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.conv(x.reshape(x.shape[0], *self.input_shape)))


def _sizes(model: str, name: str, value: Any) -> list[int]:
    """A list of positive layer sizes (a single integer means one layer), or a ConfigError."""
    items = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    try:
        sizes = [int(v) for v in items]
        ok = all(not isinstance(v, bool) and float(v) == int(v) for v in items) and all(s > 0 for s in sizes)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ConfigError(f"model '{model}': {name} must be a list of positive integers (layer sizes); got {value!r}.")
    return sizes


def _classifier(backbone: nn.Module, stream) -> IncrementalClassifier:
    model = IncrementalClassifier(backbone, backbone.out_dim, initial_classes=stream.num_classes)
    model.num_outputs = 0  # no class is active before the first task
    return model


@MODELS.register("mlp")
def mlp(stream, hidden: Sequence[int] = (256, 256), dropout: float = 0.0) -> IncrementalClassifier:
    """MLP backbone (flattened inputs) with a growing classifier head."""
    if not 0.0 <= float(dropout) < 1.0:
        raise ConfigError(f"model 'mlp': dropout must be in [0, 1); got {dropout!r}.")
    return _classifier(MLP(math.prod(stream.input_shape), _sizes("mlp", "hidden", hidden), dropout), stream)


@MODELS.register("cnn")
def cnn(stream, channels: Sequence[int] = (32, 64), out_dim: int = 128) -> IncrementalClassifier:
    """Small 1-D/2-D CNN backbone with a growing classifier head."""
    (out_dim,) = _sizes("cnn", "out_dim", out_dim)
    return _classifier(SmallCNN(stream.input_shape, _sizes("cnn", "channels", channels), out_dim), stream)


def build_model(name: str, stream, **params) -> nn.Module:
    """Build a registered model for ``stream``. Registry entries are factories
    ``factory(stream, **params) -> nn.Module``; classification factories return
    an :class:`IncrementalClassifier` sized for ``stream.num_classes`` (only the
    classes seen so far are active), language-model factories (``lifelong.hf``)
    return a causal LM."""
    from lifelong.registry import build

    return build(MODELS, name, params, stream=stream)
