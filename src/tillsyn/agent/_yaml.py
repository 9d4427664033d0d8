"""YAML loading that remembers where every key was written.

PyYAML's safe loader gives values but forgets positions; configuration errors must
name the file and line, so the document is composed into nodes first and built by
hand, recording ``path -> line``. Duplicate keys, which YAML silently resolves to the
last one, are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Path_ = tuple[str | int, ...]


class YamlError(Exception):
    """The text is not YAML, or not the shape a config can be (with file and line)."""


@dataclass
class Located:
    """A parsed document and the line (1-based) each key path was written on."""

    data: Any
    source: str
    lines: dict[Path_, int] = field(default_factory=dict)

    def where(self, path: Path_) -> str:
        """``file:line`` of ``path`` or of its nearest written ancestor."""
        probe = path
        while probe and probe not in self.lines:
            probe = probe[:-1]
        line = self.lines.get(probe)
        return f"{self.source}:{line}" if line else self.source


def load(text: str, source: str) -> Located:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise YamlError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    located = Located(None, source)
    if node is not None:
        located.data = _build(node, (), located, yaml.SafeLoader(""))
    return located


def _build(node: yaml.Node, path: Path_, located: Located, scalars: yaml.SafeLoader) -> Any:
    located.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = scalars.construct_object(key_node)
            if not isinstance(key, str):
                raise YamlError(
                    f"{located.source}:{key_node.start_mark.line + 1}: key {key!r} is not a string"
                )
            if key in out:
                raise YamlError(
                    f"{located.source}:{key_node.start_mark.line + 1}: duplicate key {key!r}"
                )
            located.lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _build(value_node, (*path, key), located, scalars)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), located, scalars) for i, item in enumerate(node.value)]
    return scalars.construct_object(node)
