"""Weight transfer to a narrower network: keep the filters with the largest L2 norm.

NetAdapt (Yang et al., ECCV 2018, section 3.3) shrinks a layer by removing the filters
with the smallest L2 norm and keeps the remaining weights, so that brief fine-tuning
starts close to the previous network. Here the layers of a backbone (the flat
``backbone.layers`` of ``ConvNormAct`` stems/heads and ``InvertedResidual`` blocks) and
its classifier are traced into *channel spaces*: every tensor dimension that indexes the
same feature channels (a conv's filters, its BN, the depthwise conv and SE gate that act on
them, the next conv's input dimension) belongs to one space.

* A space's channels are ranked by the squared L2 norm of the filters that produce them
  (summed over the convs tied by a full residual ``out + x``, which share one space).
* A narrower space keeps its top-ranked channels, in their original order.
* ReXNet's partial residual (``out[:, :c_in] += x``) ties the first ``c_in`` output
  channels to the input: the output keeps the input's kept channels first (in the input's
  order), then its best remaining channels.
* A grouped conv (ResNeXt / RegNet bottlenecks) reads and writes one space whose channels
  go in groups of the group width: filters of group ``k`` read only group ``k``'s inputs,
  so a narrower space keeps whole groups (ranked by their summed scores, the grouped
  conv's filters included), and the group width stays.
* The AnyNet blocks (:class:`ResBottleneckBlock`, :class:`ResBasicBlock`,
  :class:`VanillaBlock`) are traced like the inverted residuals; a projection shortcut
  writes the block's output space, an identity shortcut ties it to the input's.

The new network's shapes decide each space's new width; spaces never grow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmbackbones.models.layers import (
    ConvNormAct,
    InvertedResidual,
    ResidualBlock,
    SqueezeExcite,
    VanillaBlock,
)


class _Tracer:
    """Assigns a channel space to every dimension of every parameter and buffer."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.score: list[torch.Tensor] = []
        self.prefix: dict[int, int] = {}  # output space -> input space (partial residual)
        self.group: dict[int, int] = {}  # space -> group width of a grouped conv on it
        self.dims: dict[str, list[int | None]] = {}

    def new(self, score: torch.Tensor) -> int:
        self.parent.append(len(self.parent))
        self.score.append(score.detach().double())
        return len(self.parent) - 1

    def find(self, s: int) -> int:
        while self.parent[s] != s:
            self.parent[s] = self.parent[self.parent[s]]
            s = self.parent[s]
        return s

    def union(self, a: int, b: int) -> None:
        a, b = self.find(a), self.find(b)
        if a != b:
            self.parent[max(a, b)] = min(a, b)

    def norm(self, prefix: str, m: nn.Module, space: int) -> None:
        if isinstance(m, _BatchNorm):
            for k in ('weight', 'bias', 'running_mean', 'running_var'):
                self.dims[f'{prefix}.{k}'] = [space]
            self.dims[f'{prefix}.num_batches_tracked'] = []
        elif not isinstance(m, nn.Identity):
            raise TypeError(f'shrink: unsupported norm layer {type(m).__name__} at {prefix}')

    def conv(self, prefix: str, conv: nn.Conv2d, space: int | None) -> int:
        """Trace a conv reading ``space``; returns the space of its output."""
        w = conv.weight
        if conv.groups > 1:
            if conv.in_channels != conv.out_channels or space is None:
                raise TypeError(
                    f'shrink: grouped convs must keep their width ({prefix}: '
                    f'{conv.in_channels} -> {conv.out_channels})'
                )
            out = space
            self.dims[f'{prefix}.weight'] = [space, None, None, None]
            if conv.groups < conv.in_channels:  # whole groups only; depthwise: any channel
                self.group[space] = conv.in_channels // conv.groups
                self.score[space] = self.score[space] + w.detach().double().flatten(1).pow(2).sum(
                    1
                )
        else:
            out = self.new(w.flatten(1).pow(2).sum(1))
            self.dims[f'{prefix}.weight'] = [out, space, None, None]
        if conv.bias is not None:
            self.dims[f'{prefix}.bias'] = [out]
        return out

    def follow(self, prefix: str, m: nn.Module, space: int | None) -> int | None:
        """Trace layer ``m`` reading ``space`` with its handler in :data:`TRACERS`;
        returns the space of its output."""
        handler = next((TRACERS[k] for k in type(m).__mro__ if k in TRACERS), None)
        if handler is None:
            raise TypeError(
                f'shrink: unsupported layer {type(m).__name__} at {prefix}; supported: '
                + ', '.join(sorted(k.__name__ for k in TRACERS))
            )
        return handler(self, prefix, m, space)

    def layers(self, prefix: str, layers: nn.Sequential) -> int | None:
        space = None  # the RGB input is never shrunk
        for name, layer in layers.named_children():
            space = self.follow(f'{prefix}.{name}', layer, space)
        return space

    def classifier_input(self, prefix: str, head: nn.Module, space: int | None) -> None:
        """The first Linear / 1x1 conv of the classifier reads the last space."""
        for name, m in head.named_modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                w = [None, space] + [None] * (m.weight.dim() - 2)
                self.dims[f'{prefix}.{name}.weight'] = w
                return


# ------------------------------------------------------------------ layer handlers
#: layer type -> how the tracer follows it: ``handler(tracer, prefix, layer, space)``
#: returns the output's space. A registration table keyed by block type (the most
#: specific base class wins); a new block registers its handler here.
TRACERS: dict[type, Callable[[_Tracer, str, nn.Module, int | None], int | None]] = {}


def register_tracer(*types: type) -> Callable:
    """Register a handler for layers of ``types`` in :data:`TRACERS`."""

    def deco(fn: Callable) -> Callable:
        for t in types:
            TRACERS[t] = fn
        return fn

    return deco


@register_tracer(ConvNormAct)
def _conv_norm_act(t: _Tracer, prefix: str, m: nn.Module, space: int | None) -> int:
    out = t.conv(f'{prefix}.conv', m.conv, space)
    if hasattr(m, 'bn'):
        t.norm(f'{prefix}.bn', m.bn, out)
    return out


@register_tracer(SqueezeExcite)
def _squeeze_excite(t: _Tracer, prefix: str, se: nn.Module, space: int) -> int:
    red = t.conv(f'{prefix}.fc1', se.fc1, space)
    t.norm(f'{prefix}.bn', se.bn, red)
    t.dims[f'{prefix}.fc2.weight'] = [space, red, None, None]
    t.dims[f'{prefix}.fc2.bias'] = [space]
    return space  # a gate: the channels pass through


@register_tracer(InvertedResidual)
def _inverted_residual(t: _Tracer, prefix: str, m: nn.Module, space: int) -> int:
    mid = space
    if m.expand is not None:
        mid = t.follow(f'{prefix}.expand', m.expand, space)
    mid = t.follow(f'{prefix}.dw', m.dw, mid)
    if m.se is not None:
        t.follow(f'{prefix}.se', m.se, mid)
    out = t.follow(f'{prefix}.project', m.project, mid)
    if m.shortcut == 'full':
        t.union(out, space)
    elif m.shortcut == 'partial':
        t.prefix[out] = space
    return out


@register_tracer(VanillaBlock)
def _sequence(t: _Tracer, prefix: str, seq: nn.Module, space: int | None) -> int | None:
    """Convs / SE in a row (an AnyNet block's ``f`` or a vanilla block)."""
    for name, m in seq.named_children():
        space = t.follow(f'{prefix}.{name}', m, space)
    return space


@register_tracer(ResidualBlock)
def _residual_block(t: _Tracer, prefix: str, m: nn.Module, space: int | None) -> int | None:
    out = _sequence(t, f'{prefix}.f', m.f, space)
    if m.proj is None:
        t.union(out, space)
    else:
        t.union(out, t.follow(f'{prefix}.proj', m.proj, space))
    return out


@register_tracer(nn.MaxPool2d)
def _channelwise(t: _Tracer, prefix: str, m: nn.Module, space: int | None) -> int | None:
    return space  # channel-wise: the space passes through


def _select(
    old: int,
    new: int,
    score: torch.Tensor,
    first: Sequence[int] = (),
    name: str = '',
    group: int = 1,
) -> torch.Tensor:
    """Kept channel indices: ``first`` (in order), then the best of the rest by ``score``;
    with ``group > 1``, whole groups of ``group`` consecutive channels by summed score."""
    if new > old:
        raise ValueError(f'shrink: channel space {name} grows from {old} to {new}')
    if group > 1:
        if first:
            raise ValueError(f'shrink: space {name} has both groups and a partial residual')
        if old % group or new % group:
            raise ValueError(
                f'shrink: channel space {name} of grouped convs (group width {group}) '
                f'must keep whole groups, got {old} -> {new}'
            )
        g_score = score.view(-1, group).sum(1)
        groups = sorted(range(old // group), key=lambda i: (-float(g_score[i]), i))
        keep = sorted(groups[: new // group])
        return torch.tensor([g * group + j for g in keep for j in range(group)], dtype=torch.long)
    if len(first) > new:
        raise ValueError(
            f'shrink: {name} keeps {new} channels but its partial residual needs {len(first)}'
        )
    taken = set(int(i) for i in first)
    rest = [i for i in range(old) if i not in taken]
    k = new - len(first)
    order = sorted(rest, key=lambda i: (-float(score[i]), i))[:k]
    return torch.tensor(list(first) + sorted(order), dtype=torch.long)


def trace(model: nn.Module) -> _Tracer:
    """Channel spaces of a classifier (``.backbone.layers`` + ``.head``) or a backbone."""
    t = _Tracer()
    if hasattr(model, 'backbone'):
        last = t.layers('backbone.layers', model.backbone.layers)
        if hasattr(model, 'head'):
            t.classifier_input('head', model.head, last)
    else:
        t.layers('layers', model.layers)
    return t


def shrink_state_dict(old: nn.Module, new: nn.Module) -> tuple[dict, dict[str, torch.Tensor]]:
    """The state dict of ``new`` built from ``old``'s weights, largest-L2-norm filters kept.

    ``old`` and ``new`` must have the same structure, ``new`` being no wider anywhere.

    Args:
        old (nn.Module): The trained network (classifier or backbone).
        new (nn.Module): The narrower network of the same family and depth.

    Returns:
        tuple: ``(state_dict, kept)`` where ``kept`` maps each shrunk parameter name to the
        kept indices of its first shrunk dimension (for inspection).

    Example:
        >>> from mmbackbones.models.backbones import MobileNetV3
        >>> rows = [[3, 16, 16, False, 'RE', 2], [3, 32, 24, False, 'RE', 2]]
        >>> a = MobileNetV3(dict(blocks=rows), out_indices=(-1,))
        >>> rows[1][1] = 24  # expansion 32 -> 24
        >>> b = MobileNetV3(dict(blocks=rows), out_indices=(-1,))
        >>> sd, kept = shrink_state_dict(a, b)
        >>> _ = b.load_state_dict(sd); len(kept['layers.b1.expand.conv.weight'])
        24
    """
    t = trace(old)
    old_sd, new_sd = old.state_dict(), new.state_dict()
    missing = sorted(set(new_sd) ^ set(old_sd))
    if missing:
        raise ValueError(f'shrink: old and new networks differ in structure: {missing[:5]}')
    # new width of every root space, from any tensor dimension that indexes it
    new_width: dict[int, int] = {}
    old_width: dict[int, int] = {}
    for key, dims in t.dims.items():
        for d, s in enumerate(dims):
            if s is None:
                continue
            r = t.find(s)
            w_new, w_old = new_sd[key].shape[d], old_sd[key].shape[d]
            if new_width.setdefault(r, w_new) != w_new:
                raise ValueError(f'shrink: inconsistent new widths for {key} dim {d}')
            old_width[r] = w_old
    score: dict[int, torch.Tensor] = {}
    for s in range(len(t.parent)):
        r = t.find(s)
        score[r] = score[r] + t.score[s] if r in score else t.score[s].clone()
    group: dict[int, int] = {}
    for s, g in t.group.items():
        r = t.find(s)
        if group.setdefault(r, g) != g:
            raise ValueError(f'shrink: channel space #{r} has group widths {group[r]} and {g}')
    selection: dict[int, torch.Tensor] = {}
    for r in sorted(new_width):  # creation order: a partial residual's input comes first
        first: Sequence[int] = ()
        src = t.prefix.get(r)
        if src is not None:
            first = selection[t.find(src)].tolist()
        selection[r] = _select(
            old_width[r], new_width[r], score[r], first, name=f'#{r}', group=group.get(r, 1)
        )

    out, kept = {}, {}
    for key, tensor in old_sd.items():
        dims = t.dims.get(key)
        if dims is None:
            if tensor.shape != new_sd[key].shape:
                raise ValueError(f'shrink: untraced tensor {key} changes shape')
            out[key] = tensor.clone()
            continue
        for d, s in enumerate(dims):
            if s is None:
                continue
            idx = selection[t.find(s)]
            if len(idx) != tensor.shape[d] or not torch.equal(idx, torch.arange(len(idx))):
                kept.setdefault(key, idx)
            tensor = tensor.index_select(d, idx)
        out[key] = tensor.clone()
    return out, kept


def transfer_weights(old: nn.Module, new: nn.Module) -> dict[str, torch.Tensor]:
    """Load ``new`` with :func:`shrink_state_dict` of ``old``; returns ``kept``.

    Example:
        >>> from mmbackbones.models.backbones import MobileNetV3
        >>> a = MobileNetV3('small', out_indices=(-1,))
        >>> kept = transfer_weights(a, MobileNetV3('small', out_indices=(-1,)))
        >>> kept  # same widths: nothing removed
        {}
    """
    sd, kept = shrink_state_dict(old, new)
    new.load_state_dict(sd, strict=True)
    return kept
