"""Type stubs of the native module (crates/tickpipe-python). Configs and results cross as
JSON text; use the ``tickpipe`` package rather than this module."""

from typing import Any, Callable

__version__: str

def run(
    inputs: list[str],
    out: str | None = None,
    config: str | None = None,
    *,
    overwrite: bool = False,
    resume: bool = False,
    bars: str | None = None,
    label: str | None = None,
    validate: bool = False,
    rules: str | None = None,
    report: str | None = None,
    history: str | None = None,
    quarantine: str | None = None,
    shard: tuple[int, int] | None = None,
    progress: Callable[[int, int, int], Any] | None = None,
) -> str: ...
def scan(
    inputs: list[str],
    config: str | None = None,
    *,
    out: str | None = None,
    bars: str | None = None,
) -> Stream: ...

class Stream:
    def next_batch(self) -> Batch | None: ...
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...
    def stop(self) -> None: ...
    def finish(self) -> str: ...

class Batch:
    @property
    def num_rows(self) -> int: ...
    def __arrow_c_array__(self, requested_schema: object | None = None) -> tuple[object, object]: ...
    def __arrow_c_schema__(self) -> object: ...

def config_preset(name: str) -> str: ...
def config_from_toml(text: str, base: str = "default") -> str: ...
def config_to_toml(json: str) -> str: ...
def config_check(json: str) -> None: ...
def inspect(paths: list[str], config: str | None = None) -> str: ...
def gen_data(
    out: str,
    *,
    rows: int = 1_000_000,
    symbols: int = 5,
    years: int = 5,
    days: int | None = None,
    layout: str = "single",
    compression: str = "none",
    seed: int = 42,
) -> str: ...
def cache_stats(dir: str) -> str: ...
