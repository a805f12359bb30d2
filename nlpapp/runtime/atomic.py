"""Writes that are either complete or absent: build next to the target, then rename."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator

STALE_SECONDS = 600  # a scratch folder untouched this long belongs to no running writer


@contextlib.contextmanager
def atomic_folder(target: Path, replace: bool = False) -> Iterator[Path]:
    """Yield a scratch folder beside ``target``; on success it becomes ``target`` in one
    rename, on any failure it is removed. A reader that sees ``target`` sees it whole.
    With ``replace``, an existing ``target`` is moved aside first and deleted after."""
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    os.chmod(scratch, 0o777 & ~_umask())  # mkdtemp makes it private; the result should not be
    old = None
    try:
        yield scratch
        if replace and target.exists():
            old = target.with_name(f".{target.name}.{os.getpid()}.old")
            os.rename(target, old)
        try:
            os.rename(scratch, target)
        except OSError:
            if old is not None and not target.exists():  # put the old one back: never lose both
                os.rename(old, target)
                old = None
                raise
            if not target.is_dir():  # another process finished first: theirs is as good
                raise
        for stale in target.parent.glob(f".{target.name}.*.partial"):  # left by a killed writer;
            if time.time() - stale.stat().st_mtime > STALE_SECONDS:  # a live one is younger
                shutil.rmtree(stale, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(target: Path, mode: str = "w") -> Iterator:
    """Yield a file open beside ``target``; it replaces ``target`` only if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, scratch = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.chmod(scratch, 0o666 & ~_umask())
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
        os.replace(scratch, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(scratch)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
