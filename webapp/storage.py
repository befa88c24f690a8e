"""Object storage for renders and assets: a local folder by default, any S3-compatible bucket to
scale out. Objects are named by relative keys (``renders/ab/abcdef….png``); both backends refuse
the same bad names, so a key that works on one works on the other."""

from __future__ import annotations

import atexit
import collections
import contextlib
import errno
import functools
import logging
import os
import queue
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from stat import S_ISREG
from typing import Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

MAX_NAME_BYTES = 1024  # S3's key limit, applied to both backends so they accept the same names
DEFAULT_CHUNK_SIZE = 1 << 16
ACCEPTED_URLS = "file:///absolute/path, a plain folder path, or s3://bucket/prefix"

log = logging.getLogger(__name__)


class StorageError(Exception):
    """An object cannot be stored, read or reached; the message says which object and why."""

    code = "storage_error"

    def __init__(self, message: str, *, name: str | None = None):
        self.message = message
        self.name = name
        super().__init__(message)

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "details": {"name": self.name}}


class NotFound(StorageError):
    """No object by that name."""

    code = "object_not_found"


@runtime_checkable
class Storage(Protocol):
    """Where rendered files and uploaded assets live. Every method validates ``name`` first."""

    def put(self, name: str, data: bytes, *, content_type: str, durable: bool = True,
            waited_for: bool = False) -> None:
        """Store ``data``; readers see the old object or the new one, never a partial one.
        ``durable=False`` lets a backend return before the object is safe from a machine crash,
        as long as it never serves a partial object after one (a render can be made again).
        ``waited_for``: someone is waiting for this put (a synchronous render), so a backend
        may spend work beforehand to make it quick."""

    def get(self, name: str) -> bytes:
        """The object's bytes; ``NotFound`` if there is none."""

    def exists(self, name: str) -> bool: ...

    def size(self, name: str) -> int | None:
        """The object's length in bytes, ``None`` if there is none."""

    def delete(self, name: str) -> None:
        """Remove the object; deleting a missing object is not an error."""

    def local_path(self, name: str) -> Path | None:
        """The file behind ``name`` for ``send_file``, or ``None`` when objects are remote."""

    def check(self) -> None:
        """Raise ``StorageError`` unless the storage can be used (``/readyz``)."""

    def iter_chunks(self, name: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        """Stream the object. ``NotFound`` is raised by this call, before the first chunk, so
        a view can answer 404 before it starts a response; close() the iterator to stop early."""


def check_name(name: str) -> str:
    """``name`` if it is a safe relative key, else ``StorageError`` saying what is wrong."""
    problem = _name_problem(name)
    if problem:
        raise StorageError(f"invalid object name {name!r}: {problem}", name=str(name))
    return name


def _name_problem(name: object) -> str | None:
    if not isinstance(name, str) or not name:
        return "it must be a non-empty string"
    if name.startswith("/"):
        return "it must be relative, not absolute"
    if "\\" in name:
        return "backslashes are not allowed"
    if _CONTROL.search(name):
        return "NUL and other control characters are not allowed"
    try:
        if len(name.encode("utf-8")) > MAX_NAME_BYTES:
            return f"it is longer than {MAX_NAME_BYTES} bytes"
    except UnicodeEncodeError:
        return "it is not valid UTF-8"
    # "a//b", "./a" and "a/" would be one file locally but distinct keys on S3.
    if _DOTS_OR_EMPTY.search(name):
        return "empty, '.' and '..' path segments are not allowed"
    return None


_CONTROL = re.compile("[\x00-\x1f\x7f]")
_DOTS_OR_EMPTY = re.compile(r"(?:^|/)\.{0,2}(?:/|$)")  # a segment "", "." or ".."


def _check_payload(data: bytes, content_type: str) -> None:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    if not isinstance(content_type, str) or not content_type:
        raise ValueError("content_type must be a non-empty string")


class _Chunks(Iterator[bytes]):
    """An object's bytes in pieces. Closes its file or connection when exhausted, when a read
    fails, or on close() — which WSGI servers call when a client goes away mid-download."""

    def __init__(self, read: Callable[[int], bytes], close: Callable[[], Any], chunk_size: int):
        self._read = read
        self._close = close
        self._chunk_size = chunk_size
        self.closed = False

    def __next__(self) -> bytes:
        if self.closed:
            raise StopIteration
        try:
            data = self._read(self._chunk_size)
        except BaseException:
            self.close()
            raise
        if not data:
            self.close()
            raise StopIteration
        return data

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._close()

    def __enter__(self) -> _Chunks:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _check_chunk_size(chunk_size: int) -> None:
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, not {chunk_size!r}")


# -- local folder ---------------------------------------------------------------------------------


class LocalStorage(Storage):
    """Objects as files under ``root``. Names are checked lexically (no absolute paths, no ``..``),
    so nothing is ever written outside ``root``; symlinks the operator placed inside it are
    followed on purpose (a mounted disk for renders, say).

    Durability: a put writes a private temp file and renames it into place, so a name never
    shows half a file, not even when the writing process is killed (the kernel's page cache holds
    the whole file). Against a crash of the machine the bytes must be on disk before the file is
    trusted, since a content-addressed file is trusted forever ("cached", served ``immutable``)
    and a crash can leave an empty or short file under the final name:
    - ``put`` fsyncs the file before the rename (assets, merged batches);
    - ``put(durable=False)`` (renders, which can be made again) renames at once, tags the file
      with the kernel's boot id (an extended attribute) and leaves the fsync to a background
      thread, which then marks the file durable by its mode (0644; it is 0600 until then, so a
      web server serving the folder directly never sees it before it is durable either). Until
      then the file is trusted only while the machine that wrote it is still up: after a crash
      it reads as missing, so it is rendered and stored again instead of served short. Where
      extended attributes are not supported such a put is durable like any other.
    """

    FILE_MODE = 0o644  # mkstemp makes 0600; objects are served, maybe by a web server as well

    def __init__(self, root: Path | str):
        self.root = Path(root)
        # paths as strings on the way of every render: a Path costs more than the rest of it
        self._root = str(self.root)
        self._spares_folder = os.path.join(self._root, self.SPARES)
        self._folders: set[str] = set()  # made by a put of this process

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def _path(self, name: str) -> Path:
        return Path(self._file(name))

    def _file(self, name: str) -> str:
        return f"{self._root}/{check_name(name)}"  # (a checked name has no "..", "." or "//")

    def put(self, name: str, data: bytes, *, content_type: str, durable: bool = True,
            waited_for: bool = False) -> None:
        path = self._file(name)
        _check_payload(data, content_type)  # the type is not kept: send_file guesses it again
        try:
            spare = not durable and waited_for
            try:
                pending = self._write(path, data, durable=durable, spare=spare)
            except FileNotFoundError:  # its folder was removed since this process made it
                self._folders.discard(os.path.dirname(path))
                pending = self._write(path, data, durable=durable, spare=spare)
            if spare:
                _spares.refill()
            if pending:
                _flusher.submit(path)
        except OSError as exc:
            raise StorageError(f"cannot write {name} under {self.root}: {_why(exc)}",
                               name=name) from exc

    def _write(self, path: str, data: bytes, *, durable: bool, spare: bool) -> bool:
        folder = os.path.dirname(path)
        if folder not in self._folders:  # (a mkdir per put costs an exception)
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)
        ready = _spares.take(self._spares_folder, len(data)) if spare else None
        if ready is not None:
            return _write_spare_or_new(ready, path, data)
        return _write_atomically(path, data, self.FILE_MODE, durable=durable)

    SPARES = ".spares"  # objects are named renders/…, assets/…, batches/…: never one of them

    def get(self, name: str) -> bytes:
        path = self._path(name)
        try:
            with path.open("rb") as file:
                if not _trusted(file.fileno(), os.fstat(file.fileno())):
                    raise FileNotFoundError
                return file.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound(f"{name} does not exist under {self.root}", name=name) from None
        except OSError as exc:
            raise StorageError(f"cannot read {name}: {_why(exc)}", name=name) from exc

    def exists(self, name: str) -> bool:
        return self.size(name) is not None

    def size(self, name: str) -> int | None:
        path = self._file(name)
        try:
            stat = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise StorageError(f"cannot look up {name}: {_why(exc)}", name=name) from exc
        if not S_ISREG(stat.st_mode) or not _trusted(path, stat):
            return None
        return stat.st_size

    def delete(self, name: str) -> None:
        path = self._path(name)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            pass  # a folder is not an object: there is nothing by that name to delete
        except OSError as exc:
            raise StorageError(f"cannot delete {name}: {_why(exc)}", name=name) from exc

    def local_path(self, name: str) -> Path:
        """Where ``name`` lives (whether or not it exists yet, or can be trusted: ask ``size``
        before serving the file)."""
        return self._path(name)

    def check(self) -> None:
        # Creating the root makes a fresh install ready before its first render.
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"storage folder {self.root} is unusable: {_why(exc)}") from exc
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageError(f"storage folder {self.root} is not writable")

    def iter_chunks(self, name: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        _check_chunk_size(chunk_size)
        path = self._path(name)
        try:
            file = path.open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound(f"{name} does not exist under {self.root}", name=name) from None
        except OSError as exc:
            raise StorageError(f"cannot read {name}: {_why(exc)}", name=name) from exc
        if not _trusted(file.fileno(), os.fstat(file.fileno())):
            file.close()
            raise NotFound(f"{name} does not exist under {self.root}", name=name)

        def read(size: int) -> bytes:
            try:
                return file.read(size)
            except OSError as exc:
                raise StorageError(f"cannot read {name}: {_why(exc)}", name=name) from exc

        return _Chunks(read, file.close, chunk_size)


def _write_atomically(path: str, data: bytes, mode: int, *, durable: bool = True) -> bool:
    """Write ``path`` whole or not at all. True when the file still has to be made durable
    (``durable=False``: renamed into place before its fsync, see ``LocalStorage``)."""
    # A private temp file per writer in the same folder, then one rename: concurrent puts of one
    # name each replace the whole file, and readers see the old or the new bytes, never a mix.
    folder, _, base = path.rpartition("/")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{base[:40]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            pending = _seal(file.fileno(), mode, durable=durable)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # The folder is not synced: the data fsync above means a name never shows half a file, and a
    # rename lost in a crash only loses the object, which the app notices (it checks that a
    # render's file exists before answering from it) and renders again. Syncing the folder too
    # cost as much as the rest of the render's storage work.
    return pending


def _seal(fd: int, mode: int, *, durable: bool) -> bool:
    """Before the rename: tag a file not yet durable with this boot (True: the flusher makes it
    durable later), or make it durable now (where tags are not supported, too)."""
    pending = not durable and _tag_with_boot(fd)
    if not pending:
        os.fchmod(fd, mode)
        os.fsync(fd)
    return pending


# -- spare files -----------------------------------------------------------------------------------

def _write_spare(fd: int, tmp: str, path: str, data: bytes) -> bool:
    """``_write_atomically(durable=False)`` into a spare file (open as ``fd``, closed here):
    overwrite, cut to length, tag, and rename into place. True when the file still has to be
    made durable."""
    try:
        view, done = memoryview(data), 0
        while done < len(view):
            done += os.pwrite(fd, view[done:], done)
        os.ftruncate(fd, len(view))
        pending = _seal(fd, LocalStorage.FILE_MODE, durable=False)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return pending


def _write_spare_or_new(spare: str, path: str, data: bytes) -> bool:
    try:
        fd = os.open(spare, os.O_WRONLY)
    except FileNotFoundError:  # someone cleared the spares away
        return _write_atomically(path, data, LocalStorage.FILE_MODE, durable=False)
    try:
        return _write_spare(fd, spare, path, data)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        # the object's folder is on another disk (a mount the operator placed in the storage)
        _spares.disable(os.path.dirname(spare))
        return _write_atomically(path, data, LocalStorage.FILE_MODE, durable=False)


class _Spares:
    """Temp files filled with zeros ahead of time by a background thread, a few per storage
    (in its ``.spares`` folder).

    Writing a new file costs most of its time allocating page-cache pages (0.6–0.8 ms for a
    600 KB render on our VM, against 0.03 ms to overwrite pages a file already has), and a
    synchronous render waits for that. Its put (``waited_for``) overwrites a spare instead, cuts
    it to length and renames it into place; the thread then fills the next one, off the request's
    path (batch workers, which nobody waits for, write new files: that costs less in all).
    Spares are sized to the largest of the last ``RECENT`` puts (at most ``MAX_BYTES``): after
    one big render they shrink back. A bigger put, a storage with none ready, or an object
    folder on another disk than the spares (renamed across disks: ``EXDEV``) writes a new file
    as before. Spares carry their process id: the first put of a process removes those of
    processes that are gone."""

    KEEP = 2
    RECENT = 32
    MAX_BYTES = 8 << 20
    # after a put, its request still records the render (a few statements and a commit):
    # filling the next spare during that slowed it by a third
    REFILL_DELAY = 0.003
    ROUND = 64 << 10

    def __init__(self) -> None:
        self._reset()
        if hasattr(os, "register_at_fork"):  # a fork mid-refill must not inherit a held lock
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._ready: dict[str, list[tuple[str, int]]] = {}  # (path, size); the parent's: gone
        self._recent: dict[str, collections.deque[int]] = {}
        self._off: set[str] = set()
        self._pid: int | None = None

    def take(self, folder: str, size: int) -> str | None:
        """The path of a spare in ``folder`` that holds ``size`` bytes, or None; either way
        ``refill`` makes sure ones of that size are coming."""
        if self._pid != os.getpid():
            self._start()
        if size > self.MAX_BYTES or folder in self._off:
            return None
        with self._lock:
            if folder not in self._recent:
                self._recent[folder] = collections.deque(maxlen=self.RECENT)
                _remove_orphans(folder)
            self._recent[folder].append(size)
            ready = self._ready.setdefault(folder, [])
            found = next((spare for spare in ready if spare[1] >= size), None)
            if found is not None:
                ready.remove(found)
        return None if found is None else found[0]

    def refill(self) -> None:
        """Called once a put is done (writing the next spare during it slowed both down)."""
        self._wake.set()

    def disable(self, folder: str) -> None:
        with self._lock:
            self._off.add(folder)
            for tmp, _ in self._ready.pop(folder, []):
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            threading.Thread(target=self._run, name="storage-spares", daemon=True).start()
            self._pid = os.getpid()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            time.sleep(self.REFILL_DELAY)
            while (need := self._needed()) is not None:
                folder, size = need
                try:
                    spare = _make_spare(folder, size)
                except OSError as exc:  # a full disk, say: puts write new files as before
                    log.warning("cannot prepare a spare file in %s: %s", folder, _why(exc))
                    self.disable(folder)
                    continue
                with self._lock:
                    self._ready.setdefault(folder, []).append(spare)

    def _needed(self) -> tuple[str, int] | None:
        with self._lock:
            for folder, sizes in self._recent.items():
                if folder in self._off or not sizes:
                    continue
                size = min(self.MAX_BYTES, -(-max(sizes) // self.ROUND) * self.ROUND)
                ready = self._ready.setdefault(folder, [])
                for spare in [s for s in ready if not size <= s[1] <= 2 * size]:
                    ready.remove(spare)  # outgrown, or much bigger than puts are now
                    with contextlib.suppress(OSError):
                        os.unlink(spare[0])
                if len(ready) < self.KEEP:
                    return folder, size
        return None


def _make_spare(folder: str, size: int) -> tuple[str, int]:
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".spare.{os.getpid()}.", suffix=".tmp")
    try:
        zeros = bytes(min(size, 1 << 20))
        done = 0
        while done < size:
            done += os.write(fd, zeros[:size - done])
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        os.close(fd)
    return tmp, size


def _remove_orphans(folder: str) -> None:
    """Spares whose process is gone (a restart, a crash). Another machine's or container's
    spares may look gone too: removing one of those only makes its next put write a new file."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        parts = name.split(".")  # "", "spare", pid, random, "tmp"
        if len(parts) == 5 and parts[1] == "spare" and parts[2].isdigit() and not _alive(
                int(parts[2])):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, name))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process
        return True
    return True


_spares = _Spares()


# -- files not yet durable -------------------------------------------------------------------------

BOOT_XATTR = "user.pixelmerge.boot"
DURABLE_BITS = 0o004  # other-readable: set only once the bytes are on disk (FILE_MODE)


@functools.cache
def _boot_id() -> bytes | None:
    """This kernel's boot: a machine crash or restart changes it, a process crash does not."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_bytes().strip()
    except OSError:
        return None


_no_xattrs: set[int] = set()  # devices that refused a tag: their puts are durable at once


def _tag_with_boot(fd: int) -> bool:
    boot = _boot_id()
    device = os.fstat(fd).st_dev
    if boot is None or not hasattr(os, "setxattr") or device in _no_xattrs:
        return False
    try:
        os.setxattr(fd, BOOT_XATTR, boot)
    except OSError:
        _no_xattrs.add(device)
        return False
    return True


def _trusted(file: int | str, stat: os.stat_result) -> bool:
    """Durable, or written since this machine booted (then the page cache holds all of it)."""
    if stat.st_mode & DURABLE_BITS:
        return True
    try:
        return os.getxattr(file, BOOT_XATTR) == _boot_id()
    except (OSError, AttributeError):
        return False


class _Flusher:
    """One thread per process that fsyncs the files of ``put(durable=False)`` and then marks
    them durable; the queue is drained at exit. Woken from idle, it waits a moment first: the
    request that stored the file is still recording and answering, and the flusher's start
    slowed it by 0.13 ms (docs/benchmarks.md)."""

    DELAY = 0.004

    def __init__(self) -> None:
        self._queue: queue.Queue[str] = queue.Queue()
        self._lock = threading.Lock()
        self._pid: int | None = None

    def submit(self, path: str) -> None:
        if self._pid != os.getpid():
            self._start()
        self._queue.put(path)

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._queue = queue.Queue()  # a forked copy's items are the parent's to flush
            threading.Thread(target=self._run, args=(self._queue,), name="storage-fsync",
                             daemon=True).start()
            if self._pid is None:
                atexit.register(self.drain)
            self._pid = os.getpid()

    def drain(self) -> None:
        """Wait until every file submitted so far in this process is durable."""
        if self._pid == os.getpid():
            self._queue.join()

    @staticmethod
    def _run(items: queue.Queue[str]) -> None:
        idle = True
        while True:
            path = items.get()
            if idle:
                time.sleep(_Flusher.DELAY)
            try:
                _make_durable(path)
            except OSError as exc:  # stays trusted until a reboot, then is rendered again
                log.warning("cannot make %s durable: %s", path, _why(exc))
            finally:
                items.task_done()
            idle = items.empty()


def _make_durable(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return  # deleted since: nothing to keep
    try:
        os.fsync(fd)
        os.fchmod(fd, LocalStorage.FILE_MODE)  # after the fsync: the mark never precedes the data
    finally:
        os.close(fd)


_flusher = _Flusher()
flush_pending = _flusher.drain


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


# -- S3-compatible bucket -------------------------------------------------------------------------


class S3Storage(Storage):
    """Objects in ``bucket`` under ``prefix``. The boto3 client is made on first use (clients
    are thread-safe, sessions are not, so each client gets a private session, made under a lock)
    and shared by all threads. Credentials and, without ``region``, the region come from the
    usual AWS variables and files, read by boto3."""

    CONNECT_TIMEOUT = 5
    READ_TIMEOUT = 30
    ATTEMPTS = 3  # botocore's "standard" retries: transient errors and throttling, with backoff
    POOL_SIZE = 32  # above botocore's 10, so threaded web workers do not churn connections
    PROBE_CONNECT_TIMEOUT = 2  # check() answers /readyz: one quick attempt, no retries
    PROBE_READ_TIMEOUT = 5

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 region: str | None = None, client: Any = None):
        if not bucket or any(char in bucket for char in "/:@ \\"):
            raise StorageError(f"invalid S3 bucket name {bucket!r}")
        self.bucket = bucket
        self.prefix = _normalise_prefix(prefix)
        self.endpoint_url = endpoint_url
        self.region = region
        self._client = client
        self._probe = client
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        endpoint = f", endpoint_url={self.endpoint_url!r}" if self.endpoint_url else ""
        return f"S3Storage('s3://{self.bucket}/{self.prefix}'{endpoint})"

    @property
    def client(self) -> Any:
        """The shared boto3 S3 client, made on first use."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make_client(
                        self.ATTEMPTS, self.CONNECT_TIMEOUT, self.READ_TIMEOUT)
        return self._client

    def _probe_client(self) -> Any:
        if self._probe is None:
            with self._lock:
                if self._probe is None:
                    self._probe = self._make_client(
                        1, self.PROBE_CONNECT_TIMEOUT, self.PROBE_READ_TIMEOUT)
        return self._probe

    def _make_client(self, attempts: int, connect_timeout: float, read_timeout: float) -> Any:
        config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"mode": "standard", "total_max_attempts": attempts},
            max_pool_connections=self.POOL_SIZE,
            # Custom endpoints (MinIO, R2, moto …) rarely have per-bucket DNS names.
            s3={"addressing_style": "path"} if self.endpoint_url else None,
        )
        session = boto3.session.Session()
        return session.client("s3", endpoint_url=self.endpoint_url, region_name=self.region,
                              config=config)

    def _key(self, name: str) -> str:
        return self.prefix + check_name(name)

    @contextlib.contextmanager
    def _errors(self, action: str, name: str | None = None) -> Iterator[None]:
        where = f"s3://{self.bucket}/{self.prefix}{name}" if name else f"bucket s3://{self.bucket}"
        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if name and code in ("NoSuchKey", "404", "NotFound"):
                raise NotFound(f"{where} does not exist", name=name) from None
            reason = _S3_REASONS.get(code) or f"{code}: {error.get('Message', exc)}"
            raise StorageError(f"cannot {action} {where}: {reason}", name=name) from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot {action} {where}: {exc}", name=name) from exc

    def put(self, name: str, data: bytes, *, content_type: str, durable: bool = True,
            waited_for: bool = False) -> None:
        key = self._key(name)
        _check_payload(data, content_type)
        with self._errors("write", name):  # an S3 PUT is atomic: readers never see half of it
            self.client.put_object(Bucket=self.bucket, Key=key, Body=bytes(data),
                                   ContentType=content_type)

    def get(self, name: str) -> bytes:
        key = self._key(name)
        with self._errors("read", name):
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            with contextlib.closing(response["Body"]) as body:
                return body.read()

    def exists(self, name: str) -> bool:
        return self.size(name) is not None

    def size(self, name: str) -> int | None:
        # HEAD answers a bare 404 for a missing bucket too; check() tells those apart.
        key = self._key(name)
        try:
            with self._errors("look up", name):
                response = self.client.head_object(Bucket=self.bucket, Key=key)
        except NotFound:
            return None
        return int(response["ContentLength"])

    def delete(self, name: str) -> None:
        key = self._key(name)
        with self._errors("delete", name):  # S3 answers 204 for a missing key as well
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def local_path(self, name: str) -> None:
        check_name(name)
        return None

    def check(self) -> None:
        with self._errors("reach"):
            self._probe_client().head_bucket(Bucket=self.bucket)

    def iter_chunks(self, name: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        _check_chunk_size(chunk_size)
        key = self._key(name)
        with self._errors("read", name):
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]

        def read(size: int) -> bytes:
            with self._errors("read", name):
                return body.read(size)

        return _Chunks(read, body.close, chunk_size)


_S3_REASONS = {
    "404": "not found (no such bucket?)",
    "NoSuchBucket": "the bucket does not exist",
    "403": "access denied",
    "AccessDenied": "access denied",
}


def _normalise_prefix(prefix: str) -> str:
    prefix = (prefix or "").strip("/")
    if not prefix:
        return ""
    problem = _name_problem(prefix)
    if problem:
        raise StorageError(f"invalid S3 prefix {prefix!r}: {problem}")
    return prefix + "/"


# -- configuration --------------------------------------------------------------------------------


def storage_from_url(url: str, *, endpoint_url: str | None = None) -> Storage:
    """The storage named by ``STORAGE_URL``: ``file:///absolute/path`` or a plain path for a local
    folder, ``s3://bucket/prefix`` for a bucket (``endpoint_url`` for S3-compatible services)."""
    if not isinstance(url, str) or not url.strip():
        raise StorageError(f"storage URL is empty: use {ACCEPTED_URLS}")
    parts = urlsplit(url.strip())
    if not parts.scheme:
        return LocalStorage(Path(url.strip()))
    if parts.query or parts.fragment:
        raise StorageError(f"storage URL {url!r} must not have a query or fragment")
    if parts.scheme == "file":
        return _local_from_url(url, parts.netloc, unquote(parts.path))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise StorageError(f"storage URL {url!r} names no bucket: use s3://bucket/prefix")
        return S3Storage(parts.netloc, unquote(parts.path), endpoint_url=endpoint_url)
    raise StorageError(f"unsupported storage URL {url!r}: use {ACCEPTED_URLS}")


def _local_from_url(url: str, host: str, path: str) -> LocalStorage:
    if host not in ("", "localhost"):
        raise StorageError(f"storage URL {url!r} names host {host!r}: file URLs must be local")
    if not path.startswith("/"):
        raise StorageError(f"storage URL {url!r} must hold an absolute path: file:///path")
    return LocalStorage(Path(path))
