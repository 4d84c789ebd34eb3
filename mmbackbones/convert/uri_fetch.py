"""Fetch the file a weight URI names into the ecosystem's cache, and convert it in memory.

* ``timm://``: ``huggingface_hub.hf_hub_download`` from the repo ``timm/<hub name>``
  (``model.safetensors``, else ``pytorch_model.bin``, timm's own order) into the Hugging Face
  cache, which ``HF_HOME`` / ``HF_HUB_CACHE`` place; the repo's ``config.json`` (timm's
  ``pretrained_cfg``) gives the input mean/std.
* ``tv://``, ``pycls://``, ``clovaai://``: ``torch.hub.download_url_to_file`` into
  ``TORCH_HOME/hub/checkpoints/<the published file name>``, where torchvision's own
  ``weights.get_state_dict()`` and mmengine's ``torchvision://`` keep their files (with
  torchvision's hash check on its file names).
* **Offline** (``HF_HUB_OFFLINE=1``, the Hugging Face switch, honoured by every scheme:
  torch.hub has none): only the caches are read. With no file there, and no network, one
  :class:`WeightsNotFoundError` line names the URI, the cache path looked in and the
  ``tools/convert_weights.py`` command that does the same from a file at hand.
* Files are read safely (safetensors or ``torch.load(weights_only=True)``, :mod:`.io`) and
  converted strictly (:func:`~.core.convert_state_dict`); the result is
  ``{'state_dict': <our keys>, 'meta': <as the converter's files, plus 'uri'>}``.
"""

from __future__ import annotations

import json
import os
import os.path as osp
import zipfile
from typing import Any

import torch

from .source import RGB_IMAGENET, ConversionError, Input
from .uri import Weights, WeightsURIError, convert_command, resolve_uri


class WeightsNotFoundError(ConversionError, FileNotFoundError):
    """The URI's file is in no cache and cannot be downloaded; one line (see module doc)."""


def offline() -> bool:
    """Whether downloads are off: ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set,
    read now and as huggingface_hub read it at import."""
    on = ('1', 'ON', 'YES', 'TRUE')
    env = any(
        os.environ.get(v, '').upper() in on for v in ('HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE')
    )
    try:
        from huggingface_hub import constants
    except ImportError:
        return env
    return env or bool(constants.HF_HUB_OFFLINE)


def cache_path(w: Weights) -> str:
    """Where the URI's file is (or would be) cached."""
    if w.scheme.cache == 'hf':
        from huggingface_hub import constants

        folder = 'models--' + w.location.replace('/', '--')  # the documented cache layout
        return osp.join(constants.HF_HUB_CACHE, folder)
    return osp.join(torch.hub.get_dir(), 'checkpoints', w.files[0])


def not_found(w: Weights, reason: str | None) -> WeightsNotFoundError:
    """The one-line error of a URI whose file is in no cache and could not be downloaded."""
    why = (
        'downloads are off (HF_HUB_OFFLINE=1)'
        if reason is None
        else f'the download failed ({reason})'
    )
    what = f' ({" or ".join(w.files)})' if w.scheme.cache == 'hf' else ''
    return WeightsNotFoundError(
        f'{w.uri}: the weights are not in the cache and {why}; looked in {cache_path(w)}{what}. '
        f'With the file at hand ({w.page}), convert it: {convert_command(w)}, and set '
        "init_cfg=dict(type='Pretrained', checkpoint=<that file>)"
    )


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


# ------------------------------------------------------------------------------ fetch
def fetch(w: Weights) -> str:
    """The local path of the URI's file: from the cache, else downloaded into it.

    Raises:
        WeightsNotFoundError: not cached, and offline or the download failed.
        WeightsURIError: the Hub has no such repo.
    """
    return _fetch_hf(w) if w.scheme.cache == 'hf' else _fetch_url(w)


def _fetch_hf(w: Weights, files: tuple[str, ...] | None = None) -> str:
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import (
            EntryNotFoundError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
        )
    except ImportError:
        raise WeightsURIError(
            f'{w.uri}: timm:// downloads with huggingface_hub; install it '
            '(pip install mmbackbones[convert])'
        ) from None
    off = offline()
    reason = None
    for name in files or w.files:
        try:
            return hf_hub_download(w.location, name, local_files_only=off)
        except LocalEntryNotFoundError as e:  # not cached, and offline or no connection
            if not off and reason is None:
                reason = _first_line(e.__cause__ or e)
        except RepositoryNotFoundError:
            raise WeightsURIError(
                f'{w.uri}: the Hugging Face Hub has no repo {w.location} (private, gated or '
                'misspelt; timm.list_pretrained() lists the hub names)'
            ) from None
        except EntryNotFoundError:  # the repo has no such file: try the next one
            continue
        except OSError as e:  # connection / HTTP errors
            reason = reason or _first_line(e)
    raise not_found(w, None if off else reason or 'no such file in the repo')


def _is_weight_file(path: str) -> bool:
    """A torch zip archive, or a legacy (pre-1.6) torch pickle; not a web page."""
    if zipfile.is_zipfile(path):
        return True
    with open(path, 'rb') as f:
        return f.read(3) == b'\x80\x02\x8a'


def _fetch_url(w: Weights) -> str:
    path = cache_path(w)
    if osp.isfile(path):
        return path
    if offline():
        raise not_found(w, None)
    os.makedirs(osp.dirname(path), exist_ok=True)
    part = f'{path}.{os.getpid()}.part'
    match = torch.hub.HASH_REGEX.search(w.files[0]) if w.scheme.name == 'tv' else None
    try:
        torch.hub.download_url_to_file(w.location, part, hash_prefix=match and match.group(1))
        if not _is_weight_file(part):
            raise ValueError(
                'the server sent a web page, not the weights (a quota or a confirmation '
                f'page); download {w.page} by hand into {path}'
            )
        os.replace(part, path)
    except Exception as e:  # URLError, HTTPError, hash mismatch, the check above
        raise not_found(w, _first_line(e)) from None
    finally:
        if osp.exists(part):
            os.remove(part)
    return path


# ------------------------------------------------------------------------------ input
def expected_input(w: Weights, fetch_config: bool = True) -> Input:
    """The colour order and mean/std the URI's weights expect (pixel values 0-255).

    timm: the repo's ``config.json`` (``pretrained_cfg``) when cached, else timm's installed
    registry, else (with ``fetch_config``) ``config.json`` fetched; tags differ (e.g.
    ``efficientnet_b0.ra4_e3600_r224_in1k`` uses mean/std 0.5). torchvision: the weights
    enum's transforms. pycls: BGR; clovaai: RGB ImageNet statistics.
    """
    from . import SOURCES

    if w.input_hint is not None:
        return w.input_hint
    if w.scheme.name != 'timm':
        return SOURCES[w.scheme.source].input
    cfg = _timm_config(w, fetch=False) or _timm_registry(w)
    if cfg is None and fetch_config:
        cfg = _timm_config(w, fetch=True)
    if not cfg or 'mean' not in cfg or 'std' not in cfg:
        return RGB_IMAGENET
    return Input(
        'RGB',
        tuple(round(255 * float(m), 4) for m in cfg['mean']),
        tuple(round(255 * float(s), 4) for s in cfg['std']),
    )


def _timm_registry(w: Weights) -> dict | None:
    """timm's installed ``pretrained_cfg`` of the hub name, or ``None``."""
    try:
        from timm.models import get_pretrained_cfg
    except ImportError:
        return None
    try:
        found = get_pretrained_cfg(f'{w.model}.{w.tag}', allow_unregistered=False)
    except (RuntimeError, ValueError):  # a tag this timm does not know
        return None
    return found.to_dict() if found is not None else None


def _timm_config(w: Weights, fetch: bool) -> dict | None:
    """``pretrained_cfg`` of the repo's ``config.json`` (cached; or fetched), or ``None``."""
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(w.location, 'config.json')
        path = cached if isinstance(cached, str) else None
        if path is None and fetch:
            path = _fetch_hf(w, ('config.json',))
    except (ImportError, ConversionError):
        return None
    if path is None:
        return None
    try:
        with open(path, encoding='utf-8') as f:
            cfg = json.load(f).get('pretrained_cfg')
    except (OSError, ValueError, AttributeError):
        return None
    return cfg if isinstance(cfg, dict) else None


# ---------------------------------------------------------------------------- convert
def load_uri(uri: str, map_location: Any = None) -> dict[str, Any]:
    """Fetch and convert a weight URI: mmengine's ``CheckpointLoader`` calls this.

    Args:
        uri: E.g. ``'timm://rexnet_100.nav_in1k'``.
        map_location: As ``torch.load``'s (a device); ``None`` = CPU.

    Returns:
        ``{'state_dict': <our keys, every layer>, 'meta': <source, backbone, bn_eps, input,
        data_preprocessor, uri>}``, what ``tools/convert_weights.py`` writes.

    Raises:
        WeightsURIError: the URI names nothing we convert.
        WeightsNotFoundError: no file in the cache and no download.
        ConversionError: the file does not convert (the message names the keys).

    Example:
        >>> ck = load_uri('timm://rexnet_100.nav_in1k')  # doctest: +SKIP
        >>> ck['meta']['bn_eps'], ck['meta']['data_preprocessor']['bgr_to_rgb']  # doctest: +SKIP
        (1e-05, True)
    """
    from mmengine.logging import print_log

    from . import SOURCES
    from .core import convert_state_dict
    from .io import read_state_dict

    w = resolve_uri(uri)
    path = fetch(w)
    state_dict, where = read_state_dict(path)
    res = convert_state_dict(
        state_dict, w.request, others=list(SOURCES.values()), src_name=f'{uri} ({path})'
    )
    inp = expected_input(w)
    meta = dict(
        res.meta,
        uri=uri,
        src=path,
        src_state_dict=where,
        input=dict(color_order=inp.color, mean=list(inp.mean), std=list(inp.std)),
        data_preprocessor=inp.data_preprocessor(),
    )
    sd = res.state_dict
    if isinstance(map_location, (str, torch.device)) and str(map_location) != 'cpu':
        sd = {k: v.to(map_location) for k, v in sd.items()}
    print_log(
        f'[mmbackbones] {uri}: {path} converted to {len(sd)} tensors of '
        f'{res.backbone["type"]}(arch={w.request.arch!r}); dropped {len(res.dropped)} '
        '(the classifier)',
        logger='current',
    )
    return {'state_dict': sd, 'meta': meta}


__all__ = [
    'WeightsNotFoundError',
    'cache_path',
    'expected_input',
    'fetch',
    'load_uri',
    'not_found',
    'offline',
]
