"""The on-disk cache of encoded datasets: one folder per (files, schema, encoding, split) key.

The key hashes each file's absolute path, size, mtime and inode, the schema the rows are read
with, the format and label options, the vocabulary or hashing options and the split options, so
an edited file or a changed option is a new entry and a repeated load skips parsing. An entry is
built in a private folder and renamed into place when complete (rename is atomic): a reader never
sees half an entry, and two builders racing on one key keep the first. Entries are never evicted;
delete the folder (``--cache-dir``, ``$UNIMIXER_PLAN_CACHE_DIR``, default ``~/.cache/unimixer-plan``)
to reclaim the space.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from unimixer_plan.data.errors import DataError

CACHE_VERSION = 2  # bump when the encoding or the layout of an entry changes
CACHE_ENV = "UNIMIXER_PLAN_CACHE_DIR"
META = "meta.json"


def cache_root(cache_dir: str | None) -> Path:
    if cache_dir:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "unimixer-plan"


def file_identity(path: Path) -> dict[str, Any]:
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise DataError(path, "file does not exist") from None
    except OSError as err:
        raise DataError(path, f"cannot be read ({type(err).__name__})") from None
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "inode": stat.st_ino}


def cache_key(payload: dict[str, Any]) -> str:
    text = json.dumps({"version": CACHE_VERSION, **payload}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class CacheEntry:
    def __init__(self, root: Path, key: str) -> None:
        self.root, self.key = root, key
        self.path = root / key

    def meta(self, required: tuple[str, ...] = ()) -> dict[str, Any] | None:
        """The finished entry's metadata, or None when there is no usable entry (none, another
        version's, or one without a ``required`` key)."""
        try:
            meta = json.loads((self.path / META).read_text())
        except (OSError, ValueError):
            return None
        usable = isinstance(meta, dict) and meta.get("version") == CACHE_VERSION and all(k in meta for k in required)
        return meta if usable else None

    def start(self) -> Path:
        """A private folder to build the entry in."""
        folder = self.root / f".building-{self.key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            folder.mkdir(parents=True)
        except OSError as err:
            raise DataError(
                self.root, f"cannot create the data cache here ({type(err).__name__}); pass --cache-dir or --no-cache"
            ) from None
        return folder

    def publish(self, folder: Path, meta: dict[str, Any]) -> None:
        (folder / META).write_text(json.dumps({"version": CACHE_VERSION, **meta}, indent=1))
        try:
            folder.rename(self.path)
        except OSError:
            if self.meta(tuple(meta)) is not None:
                # Another process published this key first: its entry is the same data.
                shutil.rmtree(folder, ignore_errors=True)
                return
            # What holds the key is unusable (an older layout, a crash mid-delete): replace it.
            shutil.rmtree(self.path, ignore_errors=True)
            folder.rename(self.path)
