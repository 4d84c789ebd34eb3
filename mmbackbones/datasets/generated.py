"""Writing a generated data set into place atomically, with a version stamp."""

from __future__ import annotations

import os
import os.path as osp
import shutil
from collections.abc import Callable


def is_current(root: str, version: int) -> bool:
    """Whether ``root`` holds a complete set of generator ``version`` (its stamp)."""
    stamp = osp.join(root, 'VERSION')
    if not osp.isfile(stamp):
        return False
    with open(stamp) as f:
        return f.read().strip() == str(version)


def ensure_generated(
    root: str, version: int, write: Callable[[str], None], label: str, verbose: bool = True
) -> str:
    """Generate a data set under ``root`` with ``write(directory)`` unless it is current.

    A ``VERSION`` stamp marks a complete set of generator ``version``; a stale or
    half-written one is replaced. The set is written to a temporary directory and renamed
    into place, so processes that start together (the ranks of a distributed run, parallel
    test sessions) never see half a data set, and an interrupted generation leaves nothing
    that looks complete.

    Returns:
        str: The absolute path of ``root``.

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> def write(path):
        ...     open(osp.join(path, 'a.txt'), 'w').write('x')
        >>> root = ensure_generated(osp.join(d, 'set'), 1, write, 'toy', verbose=False)
        >>> sorted(os.listdir(root)), is_current(root, 1), is_current(root, 2)
        (['VERSION', 'a.txt'], True, False)
    """
    if is_current(root, version):
        return osp.abspath(root)
    tmp = f'{root.rstrip("/")}.tmp-{os.getpid()}'
    shutil.rmtree(tmp, ignore_errors=True)
    if verbose:
        print(f'[mmbackbones] generating the built-in {label} data set in {root} ...', flush=True)
    os.makedirs(tmp)
    try:
        write(tmp)
        with open(osp.join(tmp, 'VERSION'), 'w') as f:
            f.write(str(version))
    except BaseException:  # interrupted or failed: leave nothing behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if osp.exists(root) and not is_current(root, version):  # older or half-written
        shutil.rmtree(root, ignore_errors=True)
    try:
        os.rename(tmp, root)
    except OSError:  # another process got there first
        shutil.rmtree(tmp, ignore_errors=True)
        if not is_current(root, version):
            raise
    return osp.abspath(root)
