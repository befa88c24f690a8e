"""Object storage: one contract, run against a local folder and a real (moto) S3 server."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from uuid import uuid4

import pytest
from s3server import free_port, loopback_only, s3_client, s3_server  # noqa: F401 (fixtures)

from webapp.storage import (
    LocalStorage,
    NotFound,
    S3Storage,
    Storage,
    StorageError,
    flush_pending,
    storage_from_url,
)

pytestmark = pytest.mark.usefixtures("loopback_only")

BLOB = bytes(range(256)) * 1200  # every byte value, 300 kB: several chunks
BAD_NAMES = [
    "", "/etc/passwd", "../escape", "renders/../../escape", "renders/..", "..", "a/./b", "./a",
    "a//b", "a/", "a\\b", "..\\escape", "a\x00b", "a\nb", "x" * 1025, "\udcff",
]


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "root")
    endpoint_url, bucket = request.getfixturevalue("s3_server")
    # A prefix per test keeps tests apart in the one session bucket.
    return S3Storage(bucket, f"t/{uuid4().hex}", endpoint_url=endpoint_url)


@pytest.fixture
def s3(s3_server: tuple[str, str]) -> S3Storage:  # noqa: F811 (the imported fixture)
    endpoint_url, bucket = s3_server
    return S3Storage(bucket, f"t/{uuid4().hex}", endpoint_url=endpoint_url)


def test_backends_follow_the_protocol(storage: Storage) -> None:
    assert isinstance(storage, Storage)


def test_round_trip_binary(storage: Storage) -> None:
    storage.put("renders/ab/abcdef.png", BLOB, content_type="image/png")
    assert storage.get("renders/ab/abcdef.png") == BLOB
    storage.put("assets/12/empty", b"", content_type="application/octet-stream")
    assert storage.get("assets/12/empty") == b""
    assert storage.size("assets/12/empty") == 0


def test_exists_size_delete(storage: Storage) -> None:
    name = "renders/cd/cdef.webp"
    assert not storage.exists(name)
    assert storage.size(name) is None
    storage.put(name, b"webp bytes", content_type="image/webp")
    assert storage.exists(name)
    assert storage.size(name) == len(b"webp bytes")
    storage.delete(name)
    assert not storage.exists(name)
    assert storage.size(name) is None
    storage.delete(name)  # idempotent
    storage.delete("never/was/there")


def test_missing_object_is_not_found(storage: Storage) -> None:
    with pytest.raises(NotFound) as info:
        storage.get("renders/00/missing.png")
    assert isinstance(info.value, StorageError)
    assert info.value.code == "object_not_found"
    assert info.value.name == "renders/00/missing.png"
    assert "renders/00/missing.png" in str(info.value)
    with pytest.raises(NotFound):
        storage.iter_chunks("renders/00/missing.png")  # raised before the first chunk


def test_folder_is_not_an_object(storage: Storage) -> None:
    storage.put("renders/ab/abc.png", b"x", content_type="image/png")
    assert not storage.exists("renders/ab")
    assert storage.size("renders") is None
    with pytest.raises(NotFound):
        storage.get("renders/ab")
    storage.delete("renders/ab")
    assert storage.get("renders/ab/abc.png") == b"x"


def test_overwrite_replaces_whole_object(storage: Storage) -> None:
    storage.put("assets/1/logo", b"a much longer first version", content_type="image/png")
    storage.put("assets/1/logo", b"short", content_type="image/png")
    assert storage.get("assets/1/logo") == b"short"
    storage.put("assets/1/logo", b"short", content_type="image/png")  # same bytes again is fine
    assert storage.get("assets/1/logo") == b"short"


def test_concurrent_puts_never_expose_partial_objects(storage: Storage) -> None:
    name = "renders/ff/contended.png"
    payloads = [bytes([n]) * 200_000 for n in range(6)]
    storage.put(name, payloads[0], content_type="image/png")
    seen: list[bytes] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.append(storage.get(name))

    def write(payload: bytes) -> None:
        for _ in range(4):
            storage.put(name, payload, content_type="image/png")

    reader = threading.Thread(target=read)
    reader.start()
    with ThreadPoolExecutor(len(payloads)) as pool:
        list(pool.map(write, payloads))
    done.set()
    reader.join()
    assert seen and all(data in payloads for data in seen)
    assert storage.get(name) in payloads


def test_concurrent_puts_leave_no_temp_files(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: storage.put("r/a.png", bytes([n]) * 1000,
                                            content_type="image/png"), range(32)))
    assert [p.name for p in (tmp_path / "r").iterdir()] == ["a.png"]


def test_iter_chunks_streams_whole_object(storage: Storage) -> None:
    storage.put("renders/ab/big.pdf", BLOB, content_type="application/pdf")
    chunks = list(storage.iter_chunks("renders/ab/big.pdf", chunk_size=1 << 16))
    assert b"".join(chunks) == BLOB
    assert len(chunks) >= 4 and all(len(chunk) <= 1 << 16 for chunk in chunks)
    assert b"".join(storage.iter_chunks("renders/ab/big.pdf")) == BLOB


def test_iter_chunks_can_stop_early(storage: Storage) -> None:
    storage.put("renders/ab/big.pdf", BLOB, content_type="application/pdf")
    with storage.iter_chunks("renders/ab/big.pdf", chunk_size=1000) as chunks:
        assert len(next(chunks)) <= 1000
    assert chunks.closed
    assert list(chunks) == []
    with pytest.raises(ValueError):
        storage.iter_chunks("renders/ab/big.pdf", chunk_size=0)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_refused(storage: Storage, name: str) -> None:
    calls = [
        lambda: storage.put(name, b"x", content_type="text/plain"),
        lambda: storage.get(name),
        lambda: storage.exists(name),
        lambda: storage.size(name),
        lambda: storage.delete(name),
        lambda: storage.local_path(name),
        lambda: storage.iter_chunks(name),
    ]
    for call in calls:
        with pytest.raises(StorageError) as info:
            call()
        assert not isinstance(info.value, NotFound)
        assert "invalid object name" in str(info.value)


def test_local_never_writes_outside_root(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "root"
    storage = LocalStorage(root)
    storage.put("inside", b"ok", content_type="text/plain")
    for name in ["../escape", "../../escape", "a/../../escape", "/tmp/escape",
                 str(tmp_path / "escape"), "..\\escape"]:
        with pytest.raises(StorageError):
            storage.put(name, b"evil", content_type="text/plain")
    outside = [p for p in tmp_path.rglob("*") if root not in (p, *p.parents)]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in outside) == ["deep"]


def test_payload_types_are_checked(storage: Storage) -> None:
    with pytest.raises(TypeError):
        storage.put("a.txt", "text, not bytes", content_type="text/plain")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        storage.put("a.txt", b"x", content_type="")
    storage.put("a.bin", bytearray(b"ab") + memoryview(b"cd"), content_type="x/y")
    assert storage.get("a.bin") == b"abcd"


def test_local_paths(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put("renders/ab/x.png", b"png", content_type="image/png")
    path = storage.local_path("renders/ab/x.png")
    assert path == tmp_path / "renders" / "ab" / "x.png"
    assert path.read_bytes() == b"png"
    assert path.stat().st_mode & 0o777 == 0o644


def test_local_write_errors_name_the_object(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put("renders/file", b"x", content_type="text/plain")
    with pytest.raises(StorageError, match="renders/file/below") as info:
        storage.put("renders/file/below", b"y", content_type="text/plain")
    assert not isinstance(info.value, NotFound)
    assert info.value.to_dict()["code"] == "storage_error"
    (tmp_path / "folder").mkdir()
    with pytest.raises(StorageError, match="cannot write folder"):
        storage.put("folder", b"y", content_type="text/plain")
    assert list((tmp_path / "folder").iterdir()) == []


def test_local_check(tmp_path: Path) -> None:
    LocalStorage(tmp_path / "new" / "root").check()
    assert (tmp_path / "new" / "root").is_dir()
    (tmp_path / "file").write_bytes(b"")
    for root in (tmp_path / "file", tmp_path / "file" / "below"):
        with pytest.raises(StorageError, match="storage folder"):
            LocalStorage(root).check()


def test_s3_stores_content_type_under_prefix(s3: S3Storage) -> None:
    s3.put("renders/ab/x.png", b"png", content_type="image/png")
    key = f"{s3.prefix}renders/ab/x.png"
    head = s3_client(s3.endpoint_url).head_object(Bucket=s3.bucket, Key=key)
    assert head["ContentType"] == "image/png"
    assert head["ContentLength"] == 3
    assert s3.local_path("renders/ab/x.png") is None


def test_s3_client_is_made_lazily_and_once(s3_server: tuple[str, str]) -> None:  # noqa: F811
    endpoint_url, bucket = s3_server
    storage = S3Storage(bucket, "lazy", endpoint_url=endpoint_url)
    assert storage._client is None
    with ThreadPoolExecutor(8) as pool:
        clients = set(pool.map(lambda _: id(storage.client), range(16)))
    assert len(clients) == 1


def test_s3_uses_injected_client(s3_server: tuple[str, str]) -> None:  # noqa: F811
    endpoint_url, bucket = s3_server
    client = s3_client(endpoint_url)
    storage = S3Storage(bucket, "injected", client=client)
    storage.put("a", b"1", content_type="text/plain")
    storage.check()
    assert storage.client is client
    assert client.get_object(Bucket=bucket, Key="injected/a")["Body"].read() == b"1"


def test_check_passes(storage: Storage) -> None:
    storage.check()


def test_s3_check_fails_on_stopped_server() -> None:
    storage = S3Storage("bucket", endpoint_url=f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(StorageError, match="s3://bucket"):
        storage.check()
    assert time.monotonic() - started < 5
    with pytest.raises(StorageError, match="s3://bucket/x"):
        storage.get("x")


def test_s3_check_fails_on_missing_bucket(s3_server: tuple[str, str]) -> None:  # noqa: F811
    endpoint_url, _ = s3_server
    storage = S3Storage("no-such-bucket", endpoint_url=endpoint_url)
    with pytest.raises(StorageError, match="no-such-bucket"):
        storage.check()
    with pytest.raises(StorageError, match="bucket does not exist") as info:
        storage.put("a", b"x", content_type="text/plain")
    assert not isinstance(info.value, NotFound)


def test_storage_from_file_urls(tmp_path: Path) -> None:
    for url in (f"file://{tmp_path}/store", f"file://localhost{tmp_path}/store",
                f"{tmp_path}/store", f" {tmp_path}/store "):
        storage = storage_from_url(url)
        assert isinstance(storage, LocalStorage)
        assert storage.root == tmp_path / "store"
    assert storage_from_url("file:///var/lib/my%20storage").root == Path("/var/lib/my storage")
    assert storage_from_url("data/storage").root == Path("data/storage")


def test_storage_from_s3_urls() -> None:
    storage = storage_from_url("s3://my-bucket/renders/prod/", endpoint_url="http://127.0.0.1:1")
    assert isinstance(storage, S3Storage)
    assert (storage.bucket, storage.prefix) == ("my-bucket", "renders/prod/")
    assert storage.endpoint_url == "http://127.0.0.1:1"
    assert storage._client is None  # nothing connects until first use
    bare = storage_from_url("S3://my-bucket")
    assert (bare.bucket, bare.prefix, bare.endpoint_url) == ("my-bucket", "", None)


def test_storage_from_s3_url_works_end_to_end(s3_server: tuple[str, str]) -> None:  # noqa: F811
    endpoint_url, bucket = s3_server
    storage = storage_from_url(f"s3://{bucket}/via-url", endpoint_url=endpoint_url)
    storage.put("r/x.png", b"png", content_type="image/png")
    raw = s3_client(endpoint_url).get_object(Bucket=bucket, Key="via-url/r/x.png")
    assert raw["Body"].read() == b"png"


@pytest.mark.parametrize("url, message", [
    ("", "empty"),
    ("   ", "empty"),
    ("http://example.com/bucket", "file:///absolute/path, a plain folder path, or s3://"),
    ("ftp://host/path", "unsupported"),
    ("gs://bucket/prefix", "unsupported"),
    ("s3://", "names no bucket"),
    ("s3:///prefix", "names no bucket"),
    ("s3://user:secret@bucket/prefix", "invalid S3 bucket name"),
    ("s3://bucket/../up", "invalid S3 prefix"),
    ("s3://bucket/prefix?region=eu", "query"),
    ("file://otherhost/path", "must be local"),
    ("file:relative/path", "absolute path"),
])
def test_storage_from_url_errors(url: str, message: str) -> None:
    with pytest.raises(StorageError, match=message.replace("?", r"\?")):
        storage_from_url(url)


def test_errors_carry_code_and_object() -> None:
    error = StorageError("cannot read x: disk on fire", name="x")
    assert error.to_dict() == {"code": "storage_error", "message": "cannot read x: disk on fire",
                               "details": {"name": "x"}}
    assert NotFound("gone", name="y").to_dict()["code"] == "object_not_found"


def test_clients_without_endpoint_still_stay_on_loopback(
        s3_server: tuple[str, str]) -> None:  # noqa: F811
    _, bucket = s3_server  # the fixture points AWS_ENDPOINT_URL_S3 at the local server
    storage = S3Storage(bucket, f"t/{uuid4().hex}")
    storage.put("a", b"1", content_type="text/plain")
    assert storage.get("a") == b"1"


def test_loopback_guard_refuses_other_hosts(loopback_only: list[str]) -> None:  # noqa: F811
    for address in (("192.0.2.1", 443), ("s3.amazonaws.com", 443)):
        with pytest.raises(OSError, match="loopback only"):
            socket.create_connection(address, timeout=1)
    assert len(loopback_only) == 2
    loopback_only.clear()


# -- puts that are not durable yet (renders) ------------------------------------------------------


def test_a_put_not_yet_durable_is_served_at_once_and_made_durable_in_the_background(
        tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put("renders/ab/x.png", BLOB, content_type="image/png", durable=False)
    assert storage.get("renders/ab/x.png") == BLOB  # servable the moment the put returns
    assert storage.size("renders/ab/x.png") == len(BLOB)
    flush_pending()
    path = storage.local_path("renders/ab/x.png")
    assert path.stat().st_mode & 0o777 == 0o644  # the mark of a file whose fsync completed
    assert storage.get("renders/ab/x.png") == BLOB


def test_after_a_machine_crash_a_file_not_yet_durable_reads_as_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import webapp.storage as module

    storage = LocalStorage(tmp_path)
    monkeypatch.setattr(module._flusher, "submit", lambda path: None)  # the crash came first
    storage.put("renders/ab/lost.png", BLOB, content_type="image/png", durable=False)
    storage.put("renders/ab/kept.png", BLOB, content_type="image/png")
    assert storage.local_path("renders/ab/lost.png").stat().st_mode & 0o777 == 0o600
    monkeypatch.setattr(module, "_boot_id", lambda: b"the-next-boot")  # the machine restarted

    assert storage.size("renders/ab/lost.png") is None and not storage.exists(
        "renders/ab/lost.png")  # it may hold less than was written: never trusted
    with pytest.raises(NotFound):
        storage.get("renders/ab/lost.png")
    with pytest.raises(NotFound):
        storage.iter_chunks("renders/ab/lost.png")
    assert storage.get("renders/ab/kept.png") == BLOB  # fsynced before its rename

    storage.put("renders/ab/lost.png", BLOB, content_type="image/png", durable=False)
    assert storage.get("renders/ab/lost.png") == BLOB  # written again in this boot


def test_without_extended_attributes_a_put_is_durable_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import webapp.storage as module

    def refuse(*args):
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr(module.os, "setxattr", refuse)
    monkeypatch.setattr(module, "_no_xattrs", set())
    storage = LocalStorage(tmp_path)
    storage.put("renders/ab/x.png", BLOB, content_type="image/png", durable=False)
    assert storage.local_path("renders/ab/x.png").stat().st_mode & 0o777 == 0o644
    assert storage.get("renders/ab/x.png") == BLOB


def test_s3_puts_are_durable_either_way(s3: S3Storage) -> None:
    s3.put("renders/ab/x.png", BLOB, content_type="image/png", durable=False)
    assert s3.get("renders/ab/x.png") == BLOB


# -- spare files (renders overwrite pages the page cache already has) -----------------------------


def spares_of(root: Path) -> dict[int, Path]:
    """The spare files waiting under ``root``, by inode (the thread may be replacing some)."""
    folder = root / LocalStorage.SPARES
    found = {}
    for path in folder.iterdir() if folder.exists() else ():
        with contextlib.suppress(FileNotFoundError):
            found[path.stat().st_ino] = path
    return found


def spare_sizes(root: Path) -> list[int]:
    sizes = []
    for path in spares_of(root).values():
        with contextlib.suppress(FileNotFoundError):
            sizes.append(path.stat().st_size)
    return sizes


def wait_for_spares(root: Path, count: int, *, at_least: int = 0) -> dict[int, Path]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        spares, sizes = spares_of(root), spare_sizes(root)
        if len(spares) >= count and len(sizes) == len(spares) and all(
                size >= at_least for size in sizes):
            return spares
        time.sleep(0.01)
    raise AssertionError(f"no {count} spare files of {at_least}+ bytes under {root}")


def test_renders_are_written_into_spare_files_made_ahead(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    first = bytes(range(256)) * 400  # 100 kB: the first put writes a new file, asks for spares
    storage.put("renders/ab/1.png", first, content_type="image/png", durable=False,
                waited_for=True)
    spares = wait_for_spares(tmp_path, 2, at_least=len(first))
    for number, size in enumerate((len(first), 10, len(first) - 1, 1), start=2):
        data = bytes((number + i) % 251 for i in range(size))
        storage.put(f"renders/ab/{number}.png", data, content_type="image/png", durable=False,
                    waited_for=True)
        path = storage.local_path(f"renders/ab/{number}.png")
        assert path.stat().st_ino in spares  # a spare, renamed into place ...
        assert storage.get(f"renders/ab/{number}.png") == data  # ... cut to exactly the bytes
        assert path.stat().st_size == size
        spares = wait_for_spares(tmp_path, 2, at_least=len(first))
    assert storage.get("renders/ab/1.png") == first
    assert len(spares_of(tmp_path)) == 2  # no more are kept
    flush_pending()
    assert storage.local_path("renders/ab/5.png").stat().st_mode & 0o777 == 0o644  # durable
    assert [p.name for p in (tmp_path / "renders" / "ab").iterdir() if p.name.startswith(".")] \
        == []  # no temp file is left beside the objects


def test_a_put_bigger_than_the_spares_writes_a_new_file_and_later_ones_grow(
        tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put("renders/ab/small.png", b"s" * 1000, content_type="image/png", durable=False,
                waited_for=True)
    spares = wait_for_spares(tmp_path, 2)
    big = b"B" * 300_000
    storage.put("renders/ab/big.png", big, content_type="image/png", durable=False,
                waited_for=True)
    assert storage.local_path("renders/ab/big.png").stat().st_ino not in spares
    assert storage.get("renders/ab/big.png") == big
    grown = wait_for_spares(tmp_path, 2, at_least=len(big))  # the small ones make way
    storage.put("renders/ab/big2.png", big[:-1], content_type="image/png", durable=False,
                waited_for=True)
    assert storage.local_path("renders/ab/big2.png").stat().st_ino in grown
    assert storage.get("renders/ab/big2.png") == big[:-1]


def test_durable_puts_never_use_spares(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put("renders/ab/1.png", BLOB, content_type="image/png", durable=False,
                waited_for=True)
    spares = wait_for_spares(tmp_path, 2)
    storage.put("assets/1/a", BLOB, content_type="image/png")
    assert storage.local_path("assets/1/a").stat().st_ino not in spares
    assert storage.local_path("assets/1/a").stat().st_mode & 0o777 == 0o644


def test_an_object_folder_on_another_disk_gets_new_files(tmp_path: Path) -> None:
    """A renders folder the operator mounted from another disk: a spare cannot be renamed
    there (EXDEV), so the put writes a new file, and later puts do not try spares again."""
    elsewhere = Path(f"/dev/shm/pixelmerge-test-{uuid4().hex}")
    elsewhere.mkdir()
    try:
        (tmp_path / "renders").symlink_to(elsewhere)
        storage = LocalStorage(tmp_path)
        storage.put("renders/ab/1.png", BLOB, content_type="image/png", durable=False,
                    waited_for=True)
        wait_for_spares(tmp_path, 2)
        storage.put("renders/ab/2.png", BLOB[2:], content_type="image/png", durable=False,
                    waited_for=True)
        time.sleep(0.2)  # a replacement asked for before the rename failed may still come
        left = spares_of(tmp_path)
        for number in range(3, 5):
            storage.put(f"renders/ab/{number}.png", BLOB[number:], content_type="image/png",
                        durable=False)
        assert spares_of(tmp_path) == left  # not tried again
        for number in range(2, 5):
            assert storage.get(f"renders/ab/{number}.png") == BLOB[number:]
        flush_pending()
        assert sorted(p.name for p in (elsewhere / "ab").iterdir()) == [
            "1.png", "2.png", "3.png", "4.png"]
    finally:
        shutil.rmtree(elsewhere)


@pytest.mark.parametrize("durable", [True, False], ids=["durable", "render"])
def test_a_folder_removed_behind_the_storages_back_is_made_again(
        tmp_path: Path, durable: bool) -> None:
    storage = LocalStorage(tmp_path)

    def put(name: str, data: bytes) -> None:
        storage.put(name, data, content_type="image/png", durable=durable,
                    waited_for=not durable)

    put("renders/ab/1.png", BLOB)
    wait_for_spares(tmp_path, 0 if durable else 2)
    shutil.rmtree(tmp_path / "renders")  # an operator cleaning up
    put("renders/ab/2.png", BLOB[1:])
    assert storage.get("renders/ab/2.png") == BLOB[1:]
    shutil.rmtree(tmp_path / LocalStorage.SPARES, ignore_errors=True)  # and the spares too
    put("renders/ab/3.png", BLOB[3:])
    assert storage.get("renders/ab/3.png") == BLOB[3:]
    flush_pending()


def test_puts_nobody_waits_for_write_new_files(tmp_path: Path) -> None:
    """Batch workers' renders (nobody waits for them) are written as new files: a spare would
    only move the same work to another thread, and cost more in all."""
    storage = LocalStorage(tmp_path)
    storage.put("renders/ab/1.png", BLOB, content_type="image/png", durable=False,
                waited_for=True)
    spares = wait_for_spares(tmp_path, 2)
    storage.put("renders/ab/2.png", BLOB, content_type="image/png", durable=False)
    assert storage.local_path("renders/ab/2.png").stat().st_ino not in spares
    assert spares_of(tmp_path) == spares


def test_spares_shrink_back_after_a_big_put_and_dead_processes_spares_go(
        tmp_path: Path) -> None:
    import webapp.storage as module

    folder = tmp_path / LocalStorage.SPARES
    folder.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = folder / f".spare.{dead.pid}.abc123.tmp"  # left by a process that is gone
    orphan.write_bytes(b"\0" * 1000)
    storage = LocalStorage(tmp_path)
    storage.put("renders/ab/big.png", b"B" * 2_000_000, content_type="image/png",
                durable=False, waited_for=True)
    assert not orphan.exists()
    wait_for_spares(tmp_path, 2, at_least=2_000_000)
    small = b"s" * 10_000
    for number in range(module._Spares.RECENT):  # the big one drops out of the recent puts
        storage.put(f"renders/ab/{number}.png", small, content_type="image/png",
                    durable=False, waited_for=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (len(spare_sizes(tmp_path)) < 2 or any(
            size > 2 * (64 << 10) for size in spare_sizes(tmp_path))):
        time.sleep(0.01)
    sizes = spare_sizes(tmp_path)
    assert len(sizes) == 2 and all(size <= 2 * (64 << 10) for size in sizes), sizes
    assert storage.get(f"renders/ab/{module._Spares.RECENT - 1}.png") == small
