"""What a stored filter refers to: other segments and custom fields. Read without compiling,
so a rule can ask it of every dynamic segment before deleting what they name."""

from collections.abc import Iterator
from typing import Any


def filter_items(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) of a filter, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from filter_items(value)
    elif isinstance(node, list):
        for item in node:
            yield from filter_items(item)


def filter_segment_ids(filter: Any) -> set[int]:
    """Ids of the segments a filter names."""
    ids: set[int] = set()
    for key, value in filter_items(filter):
        if key in ("segment", "segments"):
            for item in _leaf_values(value):
                if isinstance(item, int) or (isinstance(item, str) and item.isdigit()):
                    ids.add(int(item))
    return ids


def filter_names_field(filter: Any, key: str) -> bool:
    """Whether a filter names the field `key` (e.g. `fields.12`)."""
    return any(name == key for name, _ in filter_items(filter))


def _leaf_values(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for inner in value.values():
            yield from _leaf_values(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _leaf_values(inner)
    else:
        yield value
