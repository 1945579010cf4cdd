"""YAML with line numbers, and a small strict validator that reports ``file:line: problem``."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any, Literal, overload

import yaml

from pressroom.errors import ContentError
from pressroom.schema import KEY_NAMES


# LibYAML's C parser when PyYAML was built with it (10x faster on a large project); both are safe.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_text(path: Path) -> str:
    """A source file as text: UTF-8, with or without a byte-order mark; anything else is a
    ContentError naming the first undecodable line and the encoding it looks like."""
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ContentError(path, 1, "is UTF-16 text; save it as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        try:
            data.decode("cp1252")
            found = "Windows-1252 (Latin-1)"
        except UnicodeDecodeError:
            found = "an unknown encoding"
        raise ContentError(path, line, f"is not UTF-8 (byte 0x{data[exc.start]:02x} looks like "
                           f"{found}); save the file as UTF-8") from exc


def load_yaml(text: str, path: Path, first_line: int = 1) -> tuple[Any, dict[str, int]]:
    """Parse YAML safely; return the data and a map of dotted key paths to 1-based file lines.

    ``first_line`` is the file line of the YAML's first line (front matter starts after ``---``).
    Duplicate keys are an error (plain ``safe_load`` would silently keep the last one), and so
    are anchors and aliases: expanding them is how a few lines grow into gigabytes.
    """
    _refuse_aliases(text, path, first_line)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = first_line + mark.line if mark is not None else first_line
        problem = getattr(exc, "problem", None) or str(exc)
        raise ContentError(
            path, line, f"invalid YAML: {problem}; check the indentation and quoting"
        ) from exc
    finally:
        loader.dispose()
    if node is None:
        return {}, {}
    lines: dict[str, int] = {}
    _walk(node, "", lines, path, first_line)
    return data, lines


def _refuse_aliases(text: str, path: Path, first_line: int) -> None:
    """Scan the YAML events (cheap: nothing is built) and stop at the first anchor or alias."""
    try:
        for event in yaml.parse(text, Loader=_Loader):
            anchor = getattr(event, "anchor", None)  # aliases, and nodes that set an anchor
            if anchor:
                kind = "alias '*" if isinstance(event, yaml.AliasEvent) else "anchor '&"
                line = event.start_mark.line if event.start_mark is not None else 0
                raise ContentError(path, first_line + line,
                                   f"YAML {kind}{anchor}' is not allowed; "
                                   "write the value out in full")
    except yaml.YAMLError:
        return  # the full parse below reports the syntax error with its line


def _walk(node: yaml.Node, prefix: str, lines: dict[str, int], path: Path, first: int) -> None:
    lines.setdefault(prefix, first + node.start_mark.line)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = first + key_node.start_mark.line
            if key in seen:
                raise ContentError(path, line, f"duplicate key '{key}'; keep only one")
            seen.add(key)
            sub = f"{prefix}.{key}" if prefix else key
            lines[sub] = line
            _walk(value_node, sub, lines, path, first)
            lines[sub] = line
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, f"{prefix}.{i}" if prefix else str(i), lines, path, first)


_TYPE_WORDS = {str: "text", int: "a whole number", float: "a number", list: "a list",
               dict: "a mapping"}


class Fields:
    """Strict reader over one YAML mapping: typed getters, then ``done()`` rejects unknown keys."""

    def __init__(self, data: Any, lines: dict[str, int], path: Path, prefix: str = "",
                 line: int | None = None) -> None:
        self.path = path
        self.lines = lines
        self.prefix = prefix
        self.line = line if line is not None else lines.get(prefix, 1)
        if not isinstance(data, dict):
            where = f"'{prefix}'" if prefix else "the front matter"
            raise ContentError(path, self.line, f"{where} must be a mapping of 'key: value' lines")
        self.data = data
        self.used: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def line_of(self, key: str) -> int:
        """The file line of ``key`` (or of this mapping when the key is absent)."""
        return self.lines.get(self._key(key), self.line)

    def error(self, key: str, message: str) -> ContentError:
        """A ContentError pointing at ``key``."""
        return ContentError(self.path, self.line_of(key), message)

    def _get(self, key: str, required: bool) -> Any:
        self.used.add(key)
        if key not in self.data or self.data[key] is None:
            if required:
                self._misspelt(key)
                raise ContentError(
                    self.path, self.line, f"missing required field '{self._key(key)}'"
                )
            return None
        return self.data[key]

    # Each getter returns its type when the key is required or has a default, else type | None.
    @overload
    def text(self, key: str, required: Literal[True] = True, default: str | None = None,
             max_len: int | None = None) -> str: ...
    @overload
    def text(self, key: str, required: bool, default: str, max_len: int | None = None) -> str: ...
    @overload
    def text(self, key: str, required: bool = True, default: None = None,
             max_len: int | None = None) -> str | None: ...

    def text(self, key: str, required: bool = True, default: str | None = None,
             max_len: int | None = None) -> str | None:
        """A non-empty string (dates and numbers are not silently accepted)."""
        value = self._get(key, required)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.error(
                key, f"'{self._key(key)}' must be text, got {value!r}; put it in quotes"
            )
        value = value.strip()
        if not value and required:
            raise self.error(key, f"'{self._key(key)}' must not be empty")
        if max_len is not None and len(value) > max_len:
            raise self.error(
                key, f"'{self._key(key)}' must be at most {max_len} characters, got {len(value)}"
            )
        return value

    @overload
    def integer(self, key: str, required: Literal[True] = True, default: int | None = None,
                minimum: int | None = None) -> int: ...
    @overload
    def integer(
        self, key: str, required: bool, default: int, minimum: int | None = None
    ) -> int: ...
    @overload
    def integer(self, key: str, required: bool = True, default: None = None,
                minimum: int | None = None) -> int | None: ...

    def integer(self, key: str, required: bool = True, default: int | None = None,
                minimum: int | None = None) -> int | None:
        """A whole number, optionally with a minimum."""
        value = self._get(key, required)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"'{self._key(key)}' must be a whole number, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.error(key, f"'{self._key(key)}' must be at least {minimum}, got {value}")
        return value

    @overload
    def number(self, key: str, required: Literal[True] = True, default: float | None = None,
               minimum: float = 0) -> float: ...
    @overload
    def number(self, key: str, required: bool, default: float, minimum: float = 0) -> float: ...
    @overload
    def number(self, key: str, required: bool = True, default: None = None,
               minimum: float = 0) -> float | None: ...

    def number(self, key: str, required: bool = True, default: float | None = None,
               minimum: float = 0) -> float | None:
        """An int or float, at least ``minimum``."""
        value = self._get(key, required)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(key, f"'{self._key(key)}' must be a number, got {value!r}")
        if value < minimum:
            raise self.error(key, f"'{self._key(key)}' must be at least {minimum}, got {value}")
        return value

    @overload
    def boolean(self, key: str, required: Literal[True] = True,
                default: bool | None = None) -> bool: ...
    @overload
    def boolean(self, key: str, required: bool, default: bool) -> bool: ...
    @overload
    def boolean(self, key: str, required: bool = True, default: None = None) -> bool | None: ...

    def boolean(self, key: str, required: bool = True, default: bool | None = None) -> bool | None:
        """true or false."""
        value = self._get(key, required)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(key, f"'{self._key(key)}' must be true or false, got {value!r}")
        return value

    @overload
    def choice(self, key: str, choices: tuple[str, ...], required: Literal[True] = True,
               default: str | None = None) -> str: ...
    @overload
    def choice(self, key: str, choices: tuple[str, ...], required: bool, default: str) -> str: ...
    @overload
    def choice(self, key: str, choices: tuple[str, ...], required: bool = True,
               default: None = None) -> str | None: ...

    def choice(self, key: str, choices: tuple[str, ...], required: bool = True,
               default: str | None = None) -> str | None:
        """One of a fixed set of strings."""
        value = self.text(key, required, default)
        if value is not None and value not in choices:
            raise self.error(
                key, f"'{self._key(key)}' must be one of {', '.join(choices)}; got {value!r}"
            )
        return value

    @overload
    def date(self, key: str, required: Literal[True] = True) -> _dt.date: ...
    @overload
    def date(self, key: str, required: bool) -> _dt.date | None: ...

    def date(self, key: str, required: bool = True) -> _dt.date | None:
        """A date written as YYYY-MM-DD."""
        value = self._get(key, required)
        if value is None:
            return None
        if isinstance(value, _dt.datetime):
            return value.date()
        if isinstance(value, _dt.date):
            return value
        raise self.error(key, f"'{self._key(key)}' must be a date like 2026-04-01, got {value!r}")

    def str_list(self, key: str, required: bool = True, min_items: int = 1) -> tuple[str, ...]:
        """A list of non-empty strings."""
        value = self._get(key, required)
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.error(key, f"'{self._key(key)}' must be a list (one '- item' per line)")
        if len(value) < min_items:
            raise self.error(
                key, f"'{self._key(key)}' needs at least {min_items} item(s), got {len(value)}"
            )
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                line = self.lines.get(f"{self._key(key)}.{i}", self.line_of(key))
                raise ContentError(self.path, line,
                                   f"'{self._key(key)}' item {i + 1} must be text, got {item!r}")
            out.append(item.strip())
        return tuple(out)

    @overload
    def mapping(self, key: str, required: Literal[True] = True) -> Fields: ...
    @overload
    def mapping(self, key: str, required: bool) -> Fields | None: ...

    def mapping(self, key: str, required: bool = True) -> Fields | None:
        """A nested mapping, itself read strictly."""
        value = self._get(key, required)
        if value is None:
            return None
        return Fields(value, self.lines, self.path, self._key(key), self.line_of(key))

    def mappings(self, key: str, min_items: int = 1) -> list["Fields"]:
        """A list of nested mappings."""
        value = self._get(key, True)
        if not isinstance(value, list) or len(value) < min_items:
            raise self.error(
                key, f"'{self._key(key)}' must be a list of at least {min_items} entries"
            )
        out = []
        for i, item in enumerate(value):
            sub = f"{self._key(key)}.{i}"
            out.append(
                Fields(item, self.lines, self.path, sub, self.lines.get(sub, self.line_of(key)))
            )
        return out

    def raw(self, key: str) -> Any:
        """The value as parsed, unchecked (for sections another module validates)."""
        return self._get(key, False)

    def _misspelt(self, key: str) -> None:
        """A required key is missing: if an unread key looks like it, report that key at its
        own line (``setz`` for ``sets``) rather than the missing one at the mapping's."""
        # A documented key read later (``steps`` when ``sets`` is missing) is not a misspelling.
        import difflib  # only on this error path (~2 ms to import)

        unread = [str(k) for k in self.data if k not in self.used and k not in KEY_NAMES]
        close = difflib.get_close_matches(key, unread, n=1, cutoff=0.75)
        if close:
            raise self.error(close[0], f"unknown key '{self._key(close[0])}' — did you mean "
                                       f"'{key}'?")

    def done(self) -> None:
        """Reject any key that no getter asked for, suggesting the nearest known key."""
        for key in self.data:
            if key not in self.used:
                import difflib  # only on this error path

                known = sorted(self.used)
                close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
                hint = (f" — did you mean '{close[0]}'?" if close
                        else f" (known keys: {', '.join(known)})")
                raise self.error(str(key), f"unknown key '{self._key(str(key))}'{hint}")
