"""The call's arguments as a translator may read them: one-shot iterators left out, at any depth.

The client libraries type ``messages``, a message's ``content``, ``tools``, Google
``contents``/``parts`` and Anthropic content blocks as ``Iterable``, so an application may
pass a generator at any of those levels. Reading one would hand the library an exhausted
iterator (the call goes out with ``[]``), and a copy is not the application's object. So the
library always gets the application's own objects, and translators read a view in which every
one-shot iterator inside lists, tuples and dicts is absent: a dict entry is left out (as a
top-level keyword argument is), a sequence item reads as None (positions keep their meaning).
Containers are copied only on the way to such an iterator; nothing else is copied or read.
"""

from __future__ import annotations

import io
from typing import Any, Iterator

#: Deeper than any request shape the client libraries accept; a bound against pathological input.
_MAX_DEPTH = 32
_ABSENT = object()
#: Values read as they are: most of a request, so the common walk stays cheap.
_SCALARS = frozenset({str, int, float, bool, type(None), bytes})


def one_shot(value: Any) -> bool:
    """An iterator reading would consume (a file is read by the library, never by us)."""
    return isinstance(value, Iterator) and not isinstance(value, io.IOBase)


def _view(value: Any, depth: int, path: set[int]) -> Any:
    """``value`` with its one-shot iterators left out; ``value`` itself when it holds none; _ABSENT for one."""
    if one_shot(value):
        return _ABSENT
    if not isinstance(value, (list, tuple, dict)) or depth >= _MAX_DEPTH or id(value) in path:
        return value
    path.add(id(value))  # a container holding itself is walked once
    try:
        if isinstance(value, dict):
            seen = {k: _view(v, depth + 1, path) for k, v in value.items()}
            if all(seen[k] is v for k, v in value.items()):
                return value
            return {k: v for k, v in seen.items() if v is not _ABSENT}
        items = [_view(v, depth + 1, path) for v in value]
        if all(s is v for s, v in zip(items, value)):
            return value
        items = [None if s is _ABSENT else s for s in items]
        return items if isinstance(value, list) else tuple(items)
    finally:
        path.discard(id(value))


def _holds(value: Any, depth: int, path: set[int]) -> bool:
    """Whether a one-shot iterator is anywhere inside ``value`` (allocates nothing on the common path)."""
    if isinstance(value, dict):
        items: Any = value.values()
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        return one_shot(value)
    if depth >= _MAX_DEPTH or id(value) in path:
        return False
    path.add(id(value))
    try:
        for item in items:
            if type(item) not in _SCALARS and _holds(item, depth + 1, path):
                return True
        return False
    finally:
        path.discard(id(value))


def one_shot_inside(args: tuple, kwargs: dict) -> bool:
    """Whether the call holds a one-shot iterator anywhere: the library consumed it, so it cannot be replayed."""
    path: set[int] = set()
    return _holds(args, 0, path) or _holds(kwargs, 0, path)


def readable(args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
    """(args, kwargs) as a translator may read them; None when they hold no one-shot iterator
    (the translator then reads the application's own arguments, uncopied)."""
    if not one_shot_inside(args, kwargs):
        return None
    path: set[int] = set()
    return _view(args, 0, path), _view(kwargs, 0, path)
