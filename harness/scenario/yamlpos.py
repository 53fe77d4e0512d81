"""YAML loading that remembers where every value came from, with hard limits.

``load_yaml`` returns plain Python data plus a map from the path of each value (a tuple of keys and
indexes) to ``(file, line)``, so a validation error can name ``scenarios/x.yaml:14``. Aliases are
expanded with a node budget, so an alias bomb ("billion laughs") is an error, not a hang.
"""

from __future__ import annotations

import os
from typing import Any

import yaml

MAX_BYTES = 1_000_000
MAX_NODES = 100_000
MAX_DEPTH = 64

Path = tuple[Any, ...]
Positions = dict[Path, tuple[str, int]]


class ScenarioError(ValueError):
    """One line: ``file[:line]: field: what is wrong``. Characters that are not printable (line
    breaks, escapes, bidi controls) in names or values quoted from the file are shown escaped."""

    def __init__(self, message: str):
        super().__init__("".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in message))


def load_yaml(path: str) -> tuple[Any, Positions]:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise ScenarioError(f"{path}: cannot read: {e.strerror or e}") from None
    return load_yaml_bytes(raw, path)


def load_yaml_bytes(raw: bytes, name: str) -> tuple[Any, Positions]:
    if len(raw) > MAX_BYTES:
        raise ScenarioError(f"{name}: file larger than {MAX_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ScenarioError(f"{name}:{line}: not UTF-8 text (byte 0x{raw[e.start]:02x})") from None
    if "\x00" in text:
        raise ScenarioError(f"{name}:{text[:text.index(chr(0))].count(chr(10)) + 1}: NUL character in file")
    try:
        node = _compose(text, name)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{name}:{mark.line + 1}" if mark else name
        raise ScenarioError(f"{where}: invalid YAML: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise ScenarioError(f"{name}: invalid YAML: {str(e).splitlines()[0]}") from None
    except RecursionError:
        raise ScenarioError(f"{name}: YAML nested too deeply") from None
    if node is None:
        return None, {}
    positions: Positions = {}
    budget = [MAX_NODES]
    data = _convert(node, (), positions, name, budget, 0)
    return data, positions


class _Limits(Exception):
    pass


try:  # libyaml's event parser: a 1 MB file is parsed in about a second instead of minutes
    from yaml._yaml import CParser as _EventParser
except ImportError:  # pragma: no cover - PyYAML without libyaml
    _EventParser = None


class _LimitedComposer(yaml.composer.Composer):
    """Counts nodes and depth while composing, so a huge or deeply nested document stops at the
    limit instead of being built in full first (time and memory stay bounded)."""

    def _limits_init(self) -> None:
        self._nodes, self._depth = 0, 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise _Limits(f"{self.peek_event().start_mark.line + 1}: document too large "
                          f"(more than {MAX_NODES} values)")
        if self._depth > MAX_DEPTH:
            raise _Limits(f"{self.peek_event().start_mark.line + 1}: nested deeper than {MAX_DEPTH} levels")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


if _EventParser is not None:
    class _Loader(_EventParser, _LimitedComposer, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
        check_node = yaml.composer.Composer.check_node
        get_node = yaml.composer.Composer.get_node
        get_single_node = yaml.composer.Composer.get_single_node

        def __init__(self, text: str):
            _EventParser.__init__(self, text)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
            _LimitedComposer.__init__(self)
            self._limits_init()
else:  # pragma: no cover
    class _Loader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, _LimitedComposer,  # type: ignore
                  yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
        def __init__(self, text: str):
            yaml.SafeLoader.__init__(self, text)
            self._limits_init()


def _compose(text: str, name: str) -> Any:
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    except _Limits as e:
        raise ScenarioError(f"{name}:{e}") from None
    finally:
        loader.dispose()


class _Constructor(yaml.constructor.SafeConstructor):
    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        """PyYAML's, after checking the size: ``<<: [*m, *m]`` chains double at each level (a merge-key
        bomb would build millions of entries before the value budget could count them)."""
        total = len(node.value)
        for key_node, value_node in node.value:
            if key_node.tag != "tag:yaml.org,2002:merge":
                continue
            subs = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for sub in subs:
                if isinstance(sub, yaml.MappingNode):
                    self.flatten_mapping(sub)
                    total += len(sub.value)
                    if total > MAX_NODES:
                        raise _Limits(f"{node.start_mark.line + 1}: document too large "
                                      f"(more than {MAX_NODES} values after merging <<)")
        super().flatten_mapping(node)


_constructor = _Constructor()
_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:omap")


def _convert(node: yaml.Node, path: Path, positions: Positions, name: str, budget: list[int], depth: int) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise ScenarioError(f"{name}:{node.start_mark.line + 1}: document too large "
                            f"(more than {MAX_NODES} values after expanding aliases)")
    if depth > MAX_DEPTH:
        raise ScenarioError(f"{name}:{node.start_mark.line + 1}: nested deeper than {MAX_DEPTH} levels")
    positions[path] = (name, node.start_mark.line + 1)
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
        raise ScenarioError(f"{name}:{node.start_mark.line + 1}: unsupported YAML tag {node.tag}")
    if isinstance(node, yaml.MappingNode):
        try:
            _constructor.flatten_mapping(node)
        except _Limits as e:
            raise ScenarioError(f"{name}:{e}") from None
        except yaml.YAMLError as e:
            raise ScenarioError(f"{name}:{node.start_mark.line + 1}: invalid merge key: "
                                f"{getattr(e, 'problem', '') or 'bad <<'}") from None
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _convert(key_node, path + ("<key>",), positions, name, budget, depth + 1)
            if isinstance(key, (list, dict)):
                raise ScenarioError(f"{name}:{key_node.start_mark.line + 1}: mapping keys must be scalars")
            if key in out:
                raise ScenarioError(f"{name}:{key_node.start_mark.line + 1}: duplicate key {key!r}")
            out[key] = _convert(value_node, path + (key,), positions, name, budget, depth + 1)
        positions.pop(path + ("<key>",), None)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(v, path + (i,), positions, name, budget, depth + 1) for i, v in enumerate(node.value)]
    try:
        return _constructor.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, OverflowError) as e:
        raise ScenarioError(f"{name}:{node.start_mark.line + 1}: invalid value: {str(e).splitlines()[0]}") from None


def where(positions: Positions, path: Path, default: str) -> str:
    """``file:line`` of the deepest known prefix of ``path``."""
    for cut in range(len(path), -1, -1):
        hit = positions.get(tuple(path[:cut]))
        if hit:
            return f"{hit[0]}:{hit[1]}"
    return default


def relpath(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel
