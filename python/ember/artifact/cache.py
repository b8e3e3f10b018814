"""The compile cache: artifacts by compile fingerprint, on disk, shared between processes.

    <ember.user_cache.cache_root()>/artifacts/       ($EMBER_CACHE_DIR, else ~/.cache/ember)
        <fingerprint>/            a complete artifact directory, as `CompiledModel.save` writes
        <fingerprint>/.last_used  touched on every hit: least recently used goes first

An entry appears by one atomic rename of a fully written directory (ember.artifact.publish), so
a reader never sees a half-written one, and two processes compiling the same model both succeed
(the second finds the entry there and keeps it). The cache is capped at EMBER_CACHE_SIZE_MB
(default 4096); inserting evicts least-recently-used entries beyond it. EMBER_CACHE=0 turns it
off. Keys come from ember.frontend.fingerprint.
"""
from __future__ import annotations

import os
import shutil
from typing import Dict, List, Optional

from ember.artifact.publish import staged_directory
from ember.user_cache import cache_root

CACHE_VARIABLE = "EMBER_CACHE"
SIZE_VARIABLE = "EMBER_CACHE_SIZE_MB"
DEFAULT_SIZE_MB = 4096
_LAST_USED = ".last_used"


def enabled() -> bool:
    return os.environ.get(CACHE_VARIABLE, "1") != "0"


def cache_dir() -> str:
    """The directory of the cached artifacts."""
    return os.path.join(cache_root(), "artifacts")


def lookup(key: str) -> Optional[str]:
    """The artifact directory cached under `key` (marked as just used), or None."""
    path = os.path.join(cache_dir(), key)
    if not os.path.isfile(os.path.join(path, "manifest.json")):
        return None
    try:
        with open(os.path.join(path, _LAST_USED), "a"):
            os.utime(os.path.join(path, _LAST_USED))
    except OSError:
        pass                    # a read-only cache still serves
    return path


def insert(key: str, artifact_dir: str) -> Optional[str]:
    """Copies a built artifact into the cache under `key` (kept as it is when another process
    put it there first), evicts beyond the size cap; the cached path, or None on failure (the
    cache is an optimization: a full disk never fails a compile)."""
    path = os.path.join(cache_dir(), key)
    try:
        if not os.path.isdir(path):
            with staged_directory(path) as stage:
                shutil.copytree(artifact_dir, stage, dirs_exist_ok=True)
                open(os.path.join(stage, _LAST_USED), "w").close()
        evict(int(os.environ.get(SIZE_VARIABLE, DEFAULT_SIZE_MB)) << 20, keep=key)
    except OSError:
        return None
    return lookup(key)


def entries() -> List[Dict[str, object]]:
    """The cached artifacts, least recently used first: key, bytes, last use (epoch s)."""
    root = cache_dir()
    found = []
    for key in os.listdir(root) if os.path.isdir(root) else ():
        path = os.path.join(root, key)
        if key.startswith(".") or not os.path.isfile(os.path.join(path, "manifest.json")):
            continue
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
        marker = os.path.join(path, _LAST_USED)
        used = os.path.getmtime(marker if os.path.exists(marker) else path)
        found.append({"key": key, "bytes": size, "last_used": used})
    return sorted(found, key=lambda e: e["last_used"])


def evict(limit_bytes: int, keep: Optional[str] = None) -> int:
    """Removes least-recently-used entries until the cache holds at most `limit_bytes` (never
    `keep`); returns how many were removed."""
    listed = entries()
    total = sum(e["bytes"] for e in listed)
    removed = 0
    for entry in listed:
        if total <= limit_bytes:
            break
        if entry["key"] == keep:
            continue
        shutil.rmtree(os.path.join(cache_dir(), entry["key"]), ignore_errors=True)
        total -= entry["bytes"]
        removed += 1
    return removed
