"""The one walker over nested configs (dicts inside lists inside dicts ...)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def walk_config(node: Any, skip: tuple[str, ...] = ()) -> Iterator[tuple[Any, Any, Any]]:
    """Every ``(container, key, value)`` of a nested config, depth first.

    ``container[key] is value``; ``key`` is a dict key or a list index. The container may
    be changed at ``key`` while walking (the items are read before descending). Values
    under a dict key in ``skip`` are yielded but not descended into.

    Example:
        >>> cfg = dict(model=dict(norm=dict(type='SyncBN'), heads=[dict(type='SyncBN')]))
        >>> for parent, key, value in walk_config(cfg):
        ...     if key == 'type' and value == 'SyncBN':
        ...         parent[key] = 'BN'
        >>> cfg
        {'model': {'norm': {'type': 'BN'}, 'heads': [{'type': 'BN'}]}}
    """
    if isinstance(node, dict):
        items: list = list(node.items())
    elif isinstance(node, (list, tuple)):
        items = list(enumerate(node))
    else:
        return
    for key, value in items:
        yield node, key, value
        if key not in skip or not isinstance(node, dict):
            yield from walk_config(value, skip)
