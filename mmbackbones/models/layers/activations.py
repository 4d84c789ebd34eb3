"""Activation builder: mmcv-style ``act_cfg`` dicts mapped to PyTorch's fused built-ins.

PyTorch's ``nn.Hardswish``/``nn.Hardsigmoid``/``nn.SiLU`` are single fused kernels; mmcv's
``HSigmoid`` is an add/div/clamp chain. Types we do not map fall back to mmcv's builder.
"""

from __future__ import annotations

import torch.nn as nn

_BUILTIN = {
    'ReLU': nn.ReLU,
    'ReLU6': nn.ReLU6,
    'SiLU': nn.SiLU,
    'Swish': nn.SiLU,
    'HSwish': nn.Hardswish,
    'Hardswish': nn.Hardswish,
    'HSigmoid': nn.Hardsigmoid,
    'Hardsigmoid': nn.Hardsigmoid,
    'Sigmoid': nn.Sigmoid,
    'ELU': nn.ELU,
}
_NO_INPLACE = ('Sigmoid',)


def build_act(act_cfg: dict | None) -> nn.Module:
    """Build an activation from ``act_cfg`` (``None`` gives ``nn.Identity``).

    Example:
        >>> build_act(dict(type='HSwish'))
        Hardswish()
    """
    if act_cfg is None:
        return nn.Identity()
    cfg = dict(act_cfg)
    act_type = cfg.pop('type')
    if act_type in _BUILTIN:
        if act_type in _NO_INPLACE:
            cfg.pop('inplace', None)
        return _BUILTIN[act_type](**cfg)
    from mmcv.cnn import build_activation_layer

    return build_activation_layer(dict(act_cfg))
