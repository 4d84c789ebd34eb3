"""Safe reading of foreign weight files for the converters.

* safetensors or ``torch.load(weights_only=True)`` through
  :func:`mmbackbones.checkpoint.load_weights`; legacy pre-1.6 torch files (the authors' 2020
  releases) with the same ``weights_only`` unpickler. A pickle that needs code is refused,
  and the refusal names what it pickles (read with ``pickletools``, never executed).
* The common wrappers (:data:`WRAPPER_KEYS`) and a DDP ``module.`` prefix are unwrapped
  (:func:`unwrap_state_dict`).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import zipfile
from collections.abc import Mapping
from typing import Any

import torch

from .formatting import first
from .source import ConversionError

#: Keys of the usual checkpoint wrappers, tried in this order.
WRAPPER_KEYS = ('state_dict', 'model_state', 'model')
#: Globals a plain tensor checkpoint pickles (not named when explaining a refusal).
_PLAIN_GLOBALS = ('torch.', 'collections.OrderedDict', 'builtins.', '_codecs.encode')


def _legacy_torch_file(path: str) -> bool:
    """A pre-1.6 (non-zip) ``torch.save`` file: a pickle starting with torch's magic."""
    try:
        with open(path, 'rb') as f:
            head = f.read(12)
    except OSError:
        return False
    return head[:3] == b'\x80\x02\x8a' and not zipfile.is_zipfile(path)


def _pickled_globals(path: str) -> list[str]:
    """The classes/functions a torch file's pickle references, read with ``pickletools``
    (which parses opcodes and never executes anything); used only to explain a refusal."""
    import pickletools

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                name = next(n for n in zf.namelist() if n.endswith('data.pkl'))
                data = zf.read(name)
        else:
            with open(path, 'rb') as f:
                data = f.read()
    except (OSError, StopIteration, zipfile.BadZipFile):
        return []
    found, strings, stream = [], [], io.BytesIO(data)
    while stream.tell() < len(data):  # a legacy file is several pickles in a row
        try:
            for op, arg, _ in pickletools.genops(stream):
                if isinstance(arg, str):
                    strings.append(arg)
                if op.name == 'GLOBAL':
                    found.append(str(arg).replace(' ', '.'))
                elif op.name == 'STACK_GLOBAL' and len(strings) >= 2:
                    found.append(f'{strings[-2]}.{strings[-1]}')
        except Exception:  # not a pickle from here on (legacy tensor data)
            break
    return [g for g in dict.fromkeys(found) if not g.startswith(_PLAIN_GLOBALS)]


def _refusal(path: str, detail: str) -> ConversionError:
    code = _pickled_globals(path)
    what = f'it pickles {first(code)}' if code else f'weights_only loading failed: {detail}'
    return ConversionError(
        f'refusing to load {path!r}: not a plain tensor checkpoint ({what}); unpickling it '
        'could run arbitrary code. Re-save its state_dict where you trust it, or use '
        'safetensors'
    )


def _load(path: str) -> Any:
    from mmbackbones.checkpoint import load_weights

    # argparse.Namespace: what timm's training checkpoints pickle as 'args' (plain data)
    safe = getattr(torch.serialization, 'safe_globals', None)
    ctx = safe([argparse.Namespace]) if safe is not None else contextlib.nullcontext()
    with ctx:
        if not _legacy_torch_file(path):
            try:
                return load_weights(path)
            except ValueError as e:
                if str(e).startswith('refusing to load'):
                    raise _refusal(path, str(e)) from None
                raise ConversionError(str(e)) from None
            except Exception as e:  # safetensors: truncated or not a safetensors file
                msg = str(e).splitlines()[0] if str(e) else type(e).__name__
                raise ConversionError(
                    f'cannot read {path!r}: truncated, corrupt or not a safetensors file ({msg})'
                ) from None
        try:  # the authors' 2020 releases predate the zip format
            return torch.load(path, map_location='cpu', weights_only=True)
        except Exception as e:
            if re.search(r'GLOBAL|[Uu]nsupported|blocked', str(e)):
                raise _refusal(path, _torch_reason(e)) from None
            raise ConversionError(
                f'weight file {path!r} is corrupt or truncated (legacy torch format: '
                f'{_torch_reason(e)})'
            ) from None


def _torch_reason(e: Exception) -> str:
    """The informative line of torch's weights_only error (it leads with advice)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    for ln in lines:
        if not ln.startswith(('Weights only load failed', 'Please file an issue', '(1)', '(2)')):
            return ln
    return lines[0] if lines else type(e).__name__


def unwrap_state_dict(obj: Any, key: str | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """The tensor state dict inside a loaded checkpoint, and where it was found.

    ``key`` picks a wrapper entry explicitly (e.g. ``'state_dict_ema'``); otherwise the first
    of :data:`WRAPPER_KEYS` holding a dict is used, or ``obj`` itself. A ``module.`` prefix
    (DDP) on every key is stripped.

    Args:
        obj: What ``torch.load`` / safetensors returned.
        key: The wrapper entry to use (``--key``); ``None`` = the first that fits.

    Raises:
        ConversionError: no dict of tensors there.

    Example:
        >>> sd, where = unwrap_state_dict({'epoch': 3, 'model_state': {'module.w': torch.ones(1)}})
        >>> list(sd), where
        (['w'], "['model_state'], 'module.' prefix stripped")
    """
    where = 'top level'
    if not isinstance(obj, Mapping):
        raise ConversionError(
            f'the file holds a {type(obj).__name__}, not a state dict or a dict wrapping one'
        )
    if key is not None:
        if key not in obj or not isinstance(obj[key], Mapping):
            raise ConversionError(
                f'--key {key!r}: the file has no dict entry {key!r}; its keys are '
                f'{first(sorted(map(str, obj)), 8)}'
            )
        obj, where = obj[key], f'[{key!r}]'
    else:
        for k in WRAPPER_KEYS:
            if isinstance(obj.get(k), Mapping):
                obj, where = obj[k], f'[{k!r}]'
                break
    bad = [str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad or not obj:
        raise ConversionError(
            f'no state dict found ({where}): '
            + (f'entries {first(bad)} are not tensors; ' if bad else 'it is empty; ')
            + f'expected a state dict or a dict with one of {list(WRAPPER_KEYS)} '
            '(pick another entry with --key)'
        )
    sd = dict(obj)
    if all(k.startswith('module.') for k in sd):
        sd = {k[len('module.') :]: v for k, v in sd.items()}
        where += ", 'module.' prefix stripped"
    return sd, where


def read_state_dict(path: str, key: str | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """Safely read a foreign weight file and unwrap its state dict.

    Args:
        path: The weight file (safetensors, torch zip or legacy torch format).
        key: The wrapper entry to use (``--key``); ``None`` = the first that fits.

    Returns:
        ``(state_dict, where)``.

    Raises:
        ConversionError: a missing, corrupt or truncated file, a pickle that needs code, or
            a file without a state dict.
    """
    return unwrap_state_dict(_load(path), key)
