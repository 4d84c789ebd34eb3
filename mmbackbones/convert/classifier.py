"""``--classifier``: a source's ImageNet classifier converted into the head of our
:class:`~mmbackbones.models.ImageClassifier`, next to the backbone.

The source modules that the key mappers drop as the classifier (:class:`~.source.Drop`
with ``classifier=True``) are matched, module by module, with the parametric layers of
the family's own classifier (``make_classifier``: linear layers, 1x1 convs, a BatchNorm):
in order where the parameter names and sizes agree, else by their unique sizes (a
safetensors file lists its keys sorted, not in model order). A 1x1 conv and a linear
layer hold the same tensor (reshaped). The result loads strictly into
``ImageClassifier(meta['backbone'], num_classes)``.

Example:
    >>> import torch
    >>> sd = {'fc.weight': torch.zeros(10, 1280), 'fc.bias': torch.zeros(10)}
    >>> group_modules(sd, list(sd))
    [('fc', {'weight': torch.Size([10, 1280]), 'bias': torch.Size([10])})]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from .formatting import first
from .source import ConversionError

#: The prefix of the backbone's keys in a classifier checkpoint.
BACKBONE_PREFIX = 'backbone.'


def group_modules(
    tensors: Mapping[str, Any], keys: Sequence[str]
) -> list[tuple[str, dict[str, torch.Size]]]:
    """``[(module, {param: shape})]`` of ``keys`` in order of first appearance."""
    out: dict[str, dict[str, torch.Size]] = {}
    for k in keys:
        module, _, param = k.rpartition('.')
        out.setdefault(module, {})[param] = torch.Size(getattr(tensors[k], 'shape', tensors[k]))
    return list(out.items())


def _fits(src: dict[str, torch.Size], ours: dict[str, torch.Size]) -> bool:
    """Same parameters (a missing BN counter aside) with the same number of elements."""
    names = set(src) | {'num_batches_tracked'} if 'num_batches_tracked' in ours else set(src)
    return names == set(ours) and all(src[p].numel() == ours[p].numel() for p in src)


def match_modules(
    src: list[tuple[str, dict[str, torch.Size]]], ours: list[tuple[str, dict[str, torch.Size]]]
) -> dict[str, str] | None:
    """``{source module: our module}``: in order if every pair fits, else by unique fit;
    ``None`` when there is no one-to-one match.

    Example:
        >>> S = torch.Size
        >>> src = [('classifier', {'weight': S([1000, 1280])}),
        ...        ('conv_head', {'weight': S([1280, 960, 1, 1])})]
        >>> ours = [('head.2', {'weight': S([1280, 960])}),
        ...         ('head.5', {'weight': S([1000, 1280])})]
        >>> match_modules(src, ours)
        {'classifier': 'head.5', 'conv_head': 'head.2'}
    """
    if len(src) != len(ours):
        return None
    if all(_fits(s, o) for (_, s), (_, o) in zip(src, ours)):
        return {s: o for (s, _), (o, _) in zip(src, ours)}
    out: dict[str, str] = {}
    for name, params in src:
        fits = [o for o, op in ours if _fits(params, op)]
        if len(fits) != 1 or fits[0] in out.values():
            return None
        out[name] = fits[0]
    return out


def _build(backbone: dict[str, Any], num_classes: int) -> torch.nn.Module:
    from mmbackbones.models import ImageClassifier

    with torch.device('meta'):
        return ImageClassifier(backbone, num_classes=num_classes)


def convert_classifier(
    state_dict: Mapping[str, torch.Tensor],
    classifier_keys: Sequence[str],
    backbone_state: Mapping[str, torch.Tensor],
    backbone: dict[str, Any],
) -> tuple[dict[str, torch.Tensor], int]:
    """Our ``ImageClassifier`` state dict (``backbone.*`` + ``head.*``) and its number of
    classes, loaded strictly into the model on the meta device.

    Args:
        state_dict: The source's state dict.
        classifier_keys: Its keys that belong to the classifier (in the file's order).
        backbone_state: Our converted backbone state dict (every layer).
        backbone: The backbone config (``meta['backbone']``).

    Raises:
        ConversionError: the source has no classifier, or it does not fit ours.
    """
    if not classifier_keys:
        raise ConversionError(
            '--classifier: the file holds no classifier (ImageNet head) tensors; convert '
            'it without --classifier'
        )
    src = group_modules(state_dict, classifier_keys)
    # the number of classes: ImageNet's 1000, else the out-size of a source layer
    candidates = [1000] + [p['weight'][0] for _, p in src if 'weight' in p]
    for num_classes in dict.fromkeys(candidates):
        model = _build(backbone, num_classes)
        head = {k: v.shape for k, v in model.state_dict().items() if k.startswith('head.')}
        ours = group_modules(head, list(head))
        pairs = match_modules(src, ours)
        if pairs is not None:
            break
    else:
        shapes = ', '.join(f'{m} {dict((p, tuple(s)) for p, s in ps.items())}' for m, ps in src)
        want = ', '.join(f'{m} {dict((p, tuple(s)) for p, s in ps.items())}' for m, ps in ours)
        raise ConversionError(
            f"--classifier: the file's classifier ({shapes}) does not fit the family's "
            f'ImageNet classifier ({want})'
        )
    out = {BACKBONE_PREFIX + k: v for k, v in backbone_state.items()}
    for module, params in src:
        target = dict(ours)[pairs[module]]
        for p, shape in target.items():
            key = f'{pairs[module]}.{p}'
            if p not in params:  # a BN counter pre-1.0 PyTorch did not save
                out[key] = torch.tensor(0, dtype=torch.long)
            else:
                out[key] = state_dict[f'{module}.{p}'].reshape(shape)
    missing = sorted(set(model.state_dict()) - set(out))
    if missing:  # pragma: no cover - the matching above covers every head tensor
        raise ConversionError(f'--classifier: missing {first(missing)}')
    try:
        model.load_state_dict(out, strict=True, assign=True)
    except RuntimeError as e:  # pragma: no cover - shapes were matched above
        raise ConversionError(f'--classifier: strict load failed: {e}') from None
    return out, num_classes
