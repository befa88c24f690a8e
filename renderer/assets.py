"""Asset stores: where ``asset:<name>`` sources and fonts come from.

A store is any callable ``name -> bytes``. It may also offer ``stamp(name)``: a cheap value that
changes whenever the content behind ``name`` changes and differs between stores (a folder's
stamp holds the file's path, inode, size and modification time). With a stamp, a warm render
reuses the decoded picture without reading the file again; without one, the asset is read on
every render (its decode is still cached by content)."""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable
from pathlib import Path

from .errors import ResourceError

Assets = Callable[[str], bytes]


class DirectoryAssets:
    """Assets read from one folder; names cannot climb out of it."""

    def __init__(self, folder: str | Path):
        self.root = Path(folder).resolve()

    def __call__(self, name: str) -> bytes:
        target = (self.root / name).resolve()
        if self.root not in target.parents or not target.is_file():
            raise ResourceError(f"no asset named {name!r} in {self.root}")
        return target.read_bytes()

    def stamp(self, name: str) -> Hashable | None:
        if not name or name.startswith("/") or ".." in name or "\x00" in name:
            return None
        try:
            info = os.stat(self.root / name)
        except OSError:
            return None
        return (str(self.root), name, info.st_ino, info.st_size, info.st_mtime_ns)

    def __repr__(self) -> str:
        return f"DirectoryAssets({str(self.root)!r})"


def directory_assets(folder: str | Path) -> DirectoryAssets:
    return DirectoryAssets(folder)


def asset_stamp(assets: Assets | None, name: str) -> Hashable | None:
    stamp = getattr(assets, "stamp", None)
    return stamp(name) if stamp is not None else None
