""":class:`Config`: tickpipe's configuration (the TOML file's sections and keys) as a Python
object with attribute access. Every rule and error message is the Rust library's."""

from __future__ import annotations

import copy
import json
import os
from typing import Any, Iterator

from . import _native

__all__ = ["Config", "Section"]


class Section:
    """One table of the configuration (``cfg.pipeline``, ``cfg.input``, ...): keys as
    attributes. Setting a key that does not exist raises ``AttributeError`` (a typo would
    otherwise be ignored)."""

    __slots__ = ("_data", "_path")

    def __init__(self, data: dict[str, Any], path: str) -> None:
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_path", path)

    def __getattr__(self, name: str) -> Any:
        data = object.__getattribute__(self, "_data")
        if name not in data:
            path = object.__getattribute__(self, "_path")
            raise AttributeError(f"config has no key `{path}.{name}`; keys: {', '.join(data)}")
        value = data[name]
        if isinstance(value, dict):
            return Section(value, f"{self._path}.{name}")
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._data:
            raise AttributeError(
                f"config has no key `{self._path}.{name}`; keys: {', '.join(self._data)}"
            )
        self._data[name] = value

    def __getitem__(self, name: str) -> Any:
        return self.__getattr__(name)

    def __setitem__(self, name: str, value: Any) -> None:
        self.__setattr__(name, value)

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __dir__(self) -> list[str]:
        return list(self._data)

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of the section as a dict."""
        return copy.deepcopy(self._data)

    def __repr__(self) -> str:
        return f"<tickpipe config [{self._path}] {self._data!r}>"


class Config:
    """tickpipe's configuration: ``Config()`` is the default, ``Config.production()`` and
    ``Config.development()`` the presets, ``Config.load(path)`` a TOML file.

    Sections and keys are attributes: ``cfg.pipeline.max_workers = 4``. ``check()`` applies
    every rule a run applies; ``save(path)`` writes TOML that the CLI reads
    (``tickpipe run --config``).
    """

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        if data is None:
            data = json.loads(_native.config_preset("default"))
        else:
            # Checked and completed by the Rust side: missing keys take their defaults.
            data = json.loads(_native.config_from_toml(_native.config_to_toml(json.dumps(data))))
        object.__setattr__(self, "_data", data)

    @classmethod
    def _from_json(cls, text: str) -> "Config":
        cfg = cls.__new__(cls)
        object.__setattr__(cfg, "_data", json.loads(text))
        return cfg

    @classmethod
    def default(cls) -> "Config":
        """The defaults (what a run without a config file uses)."""
        return cls._from_json(_native.config_preset("default"))

    @classmethod
    def production(cls) -> "Config":
        """The preset for a large machine: all cores, 8 GiB budget, 50 GB cache."""
        return cls._from_json(_native.config_preset("production"))

    @classmethod
    def development(cls) -> "Config":
        """The preset for a laptop: two workers, small chunks, 512 MiB budget, strict."""
        return cls._from_json(_native.config_preset("development"))

    @classmethod
    def from_toml(cls, text: str, base: str = "default") -> "Config":
        """Parses TOML over a preset (``default``, ``production``, ``development``); errors
        raise :class:`tickpipe.ConfigError` naming the dotted key."""
        return cls._from_json(_native.config_from_toml(text, base))

    @classmethod
    def load(cls, path: str | os.PathLike[str], base: str = "default") -> "Config":
        """Reads a TOML config file (``tickpipe config init`` writes one)."""
        with open(path, encoding="utf-8") as f:
            return cls.from_toml(f.read(), base)

    def to_toml(self) -> str:
        """The configuration as TOML (checked first)."""
        return _native.config_to_toml(json.dumps(self._data))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the configuration as a TOML file."""
        text = self.to_toml()
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)

    def check(self) -> None:
        """Checks the configuration the way a run would; raises :class:`tickpipe.ConfigError`."""
        _native.config_check(json.dumps(self._data))

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of the configuration as nested dicts."""
        return copy.deepcopy(self._data)

    def to_json(self) -> str:
        """The configuration as JSON (what the native module takes)."""
        return json.dumps(self._data)

    def copy(self) -> "Config":
        """An independent copy."""
        return Config._from_json(self.to_json())

    def set(self, key: str, value: Any) -> "Config":
        """Sets a dotted key (``"pipeline.max_workers"``); returns ``self``."""
        *sections, last = key.split(".")
        target: Any = self
        for s in sections:
            target = getattr(target, s)
        if not isinstance(target, Section):
            raise AttributeError(f"config key `{key}` is not inside a section")
        setattr(target, last, value)
        return self

    def __getattr__(self, name: str) -> Section:
        data = object.__getattribute__(self, "_data")
        if name not in data:
            raise AttributeError(f"config has no section `{name}`; sections: {', '.join(data)}")
        return Section(data[name], name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(
            f"set keys inside a section (cfg.{name}.KEY = ...) or use cfg.set('{name}.KEY', ...)"
        )

    def __dir__(self) -> list[str]:
        return [*object.__dir__(self), *self._data]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and self._data == other._data

    def __repr__(self) -> str:
        return f"<tickpipe.Config sections={list(self._data)}>"
