"""Writing the outputs of a run as one set: prepared before the work, moved into place together after it.

On main at 186e0aa ``matsym find`` created and checked its ``--out`` folder only after the search (an unwritable
folder wasted the whole run), and wrote its three files one by one: a kill during writing left hidden ``.tmp`` files
and a ``result.json`` without its model, and another process creating ``model.safetensors`` mid-run left the other
two orphaned. :class:`OutputSet` instead

1. before the work: creates the folder if needed, refuses names that exist (without ``force``), removes temporary
   folders left by earlier runs that were killed (their process is gone), and creates its own temporary folder
   ``.matsym-tmp-<pid>-<random>`` inside the output folder, which proves the folder writable and puts the files on
   the same file system as their destination, so that moving them is a rename;
2. after the work: gives every file the mode of an ordinary new file (``0666`` less the umask; safetensors writes
   ``0600``), then moves them into place with ``result.json``-like *index* files last, without ``force`` by hard links
   that fail rather than overwrite (the ones already placed are taken back), and removes the temporary folder;
3. on any failure or interruption (``KeyboardInterrupt``, ``SystemExit`` from SIGTERM): removes its temporary folder,
   and the output folder too if it created it and it is empty.

A reader therefore sees the complete old set or the complete new one, except during the few microseconds of the
renames, where the index file (moved last) still names the old set.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from matsym.errors import FileFormatError, OutputExistsError

__all__ = ["TEMP_PREFIX", "OutputSet", "remove_stale_temporaries"]

TEMP_PREFIX = ".matsym-tmp-"


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove ``.matsym-tmp-<pid>-*`` folders in ``folder`` whose process no longer runs; return them."""
    removed = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        if not entry.name.startswith(TEMP_PREFIX) or not entry.is_dir() or entry.is_symlink():
            continue
        pid_text = entry.name[len(TEMP_PREFIX) :].split("-", 1)[0]
        if not pid_text.isdigit() or (int(pid_text) != os.getpid() and _alive(int(pid_text))):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


class OutputSet:
    """A set of output files written together (see the module docstring).

    Args:
        folder: Output folder (created if missing).
        names: File names inside ``folder``, in the order they are moved into place (put the index file last).
        force: Replace existing files of the same names.

    Example:
        >>> with OutputSet(Path("run"), ["model.safetensors", "result.json"], force=False) as out:
        ...     heavy_work()
        ...     write(out.path("result.json"))
        ...     out.commit()
    """

    def __init__(self, folder: Path, names: list[str], *, force: bool = False) -> None:
        self.folder = Path(folder)
        self.names = list(names)
        self.force = force
        self.temp: Path | None = None
        self._created = False

    def __enter__(self) -> OutputSet:
        self.prepare()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.abort()

    def prepare(self) -> None:
        """Check and create the folder, refuse clashes, clean old temporaries, make the temporary folder.

        Raises:
            FileFormatError: the folder is a file or cannot be created or written.
            OutputExistsError: an output exists and ``force`` is False.
        """
        out = self.folder
        if out.exists() and not out.is_dir():
            raise FileFormatError(f"cannot write to {out}: it exists and is not a directory")
        for name in self.names:
            if (out / name).is_dir():
                raise FileFormatError(f"cannot write {out / name}: it is a directory, expected a file name")
        if not self.force:
            existing = [out / n for n in self.names if (out / n).exists() or (out / n).is_symlink()]
            if existing:
                raise OutputExistsError(
                    f"cannot write {', '.join(map(str, existing))}: exists; pass force=True to overwrite",
                    path=existing[0],
                )
        try:
            if not out.exists():
                out.mkdir(parents=True)
                self._created = True
            remove_stale_temporaries(out)
            self.temp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", dir=out))
        except OSError as exc:
            self.abort()
            raise FileFormatError(f"cannot write to {out}: {exc.strerror or exc}") from None

    def path(self, name: str) -> Path:
        """Where to write ``name`` before :meth:`commit` (inside the temporary folder)."""
        if self.temp is None:
            raise FileFormatError("the output set is not prepared")
        if name not in self.names:
            raise FileFormatError(f"{name} is not one of the outputs {self.names}")
        return self.temp / name

    def commit(self) -> list[Path]:
        """Move every file into place (see the module docstring) and remove the temporary folder.

        Raises:
            FileFormatError: a file is missing from the temporary folder, or cannot be moved.
            OutputExistsError: without ``force``, an output appeared meanwhile (nothing of this set is left in
                place).
        """
        if self.temp is None:
            raise FileFormatError("the output set is not prepared")
        mode = 0o666 & ~_umask()
        for name in self.names:
            src = self.temp / name
            if not src.is_file():
                raise FileFormatError(f"cannot write {self.folder / name}: it was not produced")
            os.chmod(src, mode)
        placed: list[Path] = []
        try:
            for name in self.names:
                src, dst = self.temp / name, self.folder / name
                if self.force:
                    os.replace(src, dst)
                else:
                    try:
                        os.link(src, dst)  # never overwrites
                    except FileExistsError:
                        raise OutputExistsError(
                            f"cannot write {dst}: it appeared during the run; pass force=True to overwrite", path=dst
                        ) from None
                placed.append(dst)
        except BaseException:
            if not self.force:
                for dst in placed:  # ours: hard links to the files in the temporary folder
                    with contextlib.suppress(OSError):
                        os.unlink(dst)
            raise
        self._created = False  # the folder now holds the outputs: keep it
        self.abort()
        return [self.folder / n for n in self.names]

    def abort(self) -> None:
        """Remove the temporary folder (and the output folder if this set created it and it is empty)."""
        if self.temp is not None:
            shutil.rmtree(self.temp, ignore_errors=True)
            self.temp = None
        if self._created:
            with contextlib.suppress(OSError):
                self.folder.rmdir()  # only when empty
            self._created = False
