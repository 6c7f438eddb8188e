"""Remote and file-like sources: URLs through fsspec, open binary file objects.

Real servers on loopback (see ``remote_servers.py``): nginx serving the samples
with range requests (and without, and 403), moto's S3 server holding them.
Every file must give the same pixels and metadata remotely as locally, reads
must be ranged (measured from nginx's ``$body_bytes_sent``), and bad sources
must fail clearly, naming the source.
"""

from __future__ import annotations

import importlib.util
import io
import os
import pickle
import shutil
import socket
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nd2
from conftest import BUILT, SAMPLES, SAMPLES_DIR
from nd2.container.chunk_map import TRAILER_SIZE
from nd2.container.sources import TAIL_PROBE, FileObjectSource, URLSource, open_source
from nd2.errors import NotND2Error
from nd2.readers.modern import frame_chunk_name
from remote_servers import (  # noqa: F401 - the fixtures nginx, s3 and remote_root
    Nginx,
    S3Server,
    body_bytes,
    nginx_fixture,
    remote_root_fixture,
    s3_fixture,
)

SAMPLE_NAMES = [p.name for p in SAMPLES]
BUILT_NAMES = [f"built-{name}.nd2" for name in BUILT]
#: a few files for the sources tested on fewer files
FEW = [
    "dims_z5t3c2y32x32.nd2",
    "lim_rgb8_y40x50.nd2",
    "lim_t5c3_u8_y33x61_padded.nd2",
    "built-zlib_u16.nd2",
    "built-xml_v21.nd2",
]


# ------------------------------------------------------------------- helpers
def local_path(root: Path, name: str) -> Path:
    return (root / name).resolve()


def open_remote(kind: str, name: str, nginx: Nginx, s3: S3Server | None) -> nd2.ND2File:
    if kind == "http":
        return nd2.ND2File(nginx.url(name))
    assert s3 is not None
    return nd2.ND2File(s3.url(name), storage_options=s3.storage_options)


def same_everything(remote: nd2.ND2File, local: nd2.ND2File) -> None:
    """Metadata (compared by repr: NaN == NaN) and every frame equal."""
    assert dict(remote.sizes) == dict(local.sizes)
    assert remote.dtype == local.dtype
    assert remote.shape == local.shape
    for name in ("attributes", "metadata", "experiment", "text_info", "custom_data", "rois"):
        assert repr(getattr(remote, name)) == repr(getattr(local, name)), name
    assert repr(remote.frame_metadata(0)) == repr(local.frame_metadata(0))
    assert repr(remote.events()) == repr(local.events())
    assert repr(remote.voxel_size()) == repr(local.voxel_size())
    count = local._rdr.frame_count()
    assert remote._rdr.frame_count() == count
    for index in range(count):
        np.testing.assert_array_equal(remote.read_frame(index), local.read_frame(index))


def refused_port() -> int:
    """A loopback port that refuses connections."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class NonSeekable(io.RawIOBase):
    """A readable binary stream that cannot seek (like a pipe)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._data.readinto(buffer)


# --------------------------------------------------- every file, http and s3
@pytest.mark.parametrize("name", SAMPLE_NAMES + BUILT_NAMES)
def test_http_matches_local(name: str, nginx: Nginx, remote_root: Path) -> None:
    with (
        nd2.ND2File(nginx.url(name)) as remote,
        nd2.ND2File(local_path(remote_root, name)) as local,
    ):
        same_everything(remote, local)
        assert remote.path == nginx.url(name)


@pytest.mark.parametrize("name", [*SAMPLE_NAMES, "built-zlib_u16.nd2", "built-cancelled_tz.nd2"])
def test_s3_matches_local(name: str, s3: S3Server, remote_root: Path) -> None:
    url = s3.url(name)
    with (
        nd2.ND2File(url, storage_options=s3.storage_options) as remote,
        nd2.ND2File(local_path(remote_root, name)) as local,
    ):
        same_everything(remote, local)
        assert remote.path == url


@pytest.mark.parametrize("name", FEW)
def test_memory_url_matches_local(name: str, remote_root: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    url = f"memory://nd2-tests/{name}"
    fs = fsspec.filesystem("memory")
    fs.pipe(url, local_path(remote_root, name).read_bytes())
    try:
        with nd2.ND2File(url) as remote, nd2.ND2File(local_path(remote_root, name)) as local:
            same_everything(remote, local)
    finally:
        fs.rm(url)


@pytest.mark.parametrize("name", FEW)
def test_file_url_matches_local(name: str, remote_root: Path) -> None:
    path = local_path(remote_root, name)
    with nd2.ND2File(path.as_uri()) as remote, nd2.ND2File(path) as local:
        assert remote._rdr.chunks.buffer is None  # a URL: read in ranges, not mapped
        same_everything(remote, local)
        assert remote.path == path.as_uri()


@pytest.mark.parametrize("name", FEW)
def test_file_objects_match_local(name: str, remote_root: Path) -> None:
    path = local_path(remote_root, name)
    with nd2.ND2File(path) as local:
        with open(path, "rb") as fh, nd2.ND2File(fh) as remote:
            same_everything(remote, local)
            assert remote.path == str(path)  # a named file object: its name
        with open(path, "rb", buffering=0) as raw, nd2.ND2File(raw) as remote:
            same_everything(remote, local)
        with nd2.ND2File(io.BytesIO(path.read_bytes())) as remote:
            same_everything(remote, local)
            assert remote.path == ""  # nothing names a BytesIO
            assert remote._rdr.chunks.buffer is None
            assert remote._rdr.chunks.array is None


def test_every_sample_from_bytesio() -> None:
    for path in SAMPLES:
        with nd2.ND2File(io.BytesIO(path.read_bytes())) as f, nd2.ND2File(path) as local:
            np.testing.assert_array_equal(f.asarray(), local.asarray())
            assert repr(f.metadata) == repr(local.metadata)


def test_imread_sources(nginx: Nginx, s3: S3Server) -> None:
    name = "lim_t3z5c2_u16_y48x64.nd2"
    want = nd2.imread(SAMPLES_DIR / name)
    np.testing.assert_array_equal(nd2.imread(nginx.url(name)), want)
    np.testing.assert_array_equal(
        nd2.imread(s3.url(name), storage_options=s3.storage_options), want
    )
    np.testing.assert_array_equal(nd2.imread(io.BytesIO((SAMPLES_DIR / name).read_bytes())), want)
    with open(SAMPLES_DIR / name, "rb") as fh:
        np.testing.assert_array_equal(nd2.imread(fh), want)
        assert not fh.closed


def test_unfinished_file_over_http(nginx: Nginx, remote_root: Path) -> None:
    """A file without its chunk map is read by scanning, remotely too."""
    whole = (remote_root / "built-tzc_u16.nd2").read_bytes()
    map_offset = int.from_bytes(whole[-8:], "little")
    cut = remote_root / "cut-tzc_u16.nd2"
    cut.write_bytes(whole[:map_offset])
    try:
        with pytest.warns(nd2.errors.IncompleteFileWarning), nd2.ND2File(cut) as local:
            want = local.asarray()
        with (
            pytest.warns(nd2.errors.IncompleteFileWarning, match="read by scanning"),
            nd2.ND2File(nginx.url(cut.name)) as remote,
        ):
            np.testing.assert_array_equal(remote.asarray(), want)
    finally:
        cut.unlink()


# --------------------------------------------------------------- byte counts
@pytest.mark.parametrize("name", [*SAMPLE_NAMES, "built-zlib_u16.nd2"])
def test_reads_are_ranged(name: str, nginx: Nginx, remote_root: Path) -> None:
    """Opening fetches signature, trailer and chunk map; a frame about its bytes."""
    data = local_path(remote_root, name).read_bytes()
    size = len(data)
    map_offset = int.from_bytes(data[-8:], "little")
    start = nginx.mark()
    f = nd2.ND2File(nginx.url(name))
    try:
        opening = nginx.entries_since(start)
        gets = [e for e in opening if e.method == "GET"]
        assert all(e.status == 206 and e.range.startswith("bytes=") for e in gets), opening
        # the tail probe, the signature chunk and the chunk-map chunk: nothing more
        assert body_bytes(opening) <= TAIL_PROBE + 112 + (size - map_offset), opening
        assert body_bytes(opening) < 16 * 1024
        assert len(gets) <= 3

        _ = f.shape  # the layout: attributes and picture metadata
        layout = f._rdr.layout
        for index in sorted({0, f._rdr.frame_count() - 1}):
            start = nginx.mark()
            frame = f.read_frame(index)
            moved = nginx.entries_since(start)
            assert all(e.status == 206 for e in moved), moved
            payload = f._rdr.chunks.chunk_map[frame_chunk_name(index)][1]
            if layout.compression is None:
                assert body_bytes(moved) < 1.2 * frame.nbytes, moved
                assert body_bytes(moved) <= layout.block_size + 64, moved
            else:  # the compressed payload, not the file
                assert body_bytes(moved) <= payload + 64, moved
            assert len(moved) <= 2  # chunk header + name, then the pixels
    finally:
        f.close()


def test_metadata_reads_only_their_chunks(nginx: Nginx) -> None:
    name = "pyND2SDK_file02.nd2"
    size = (SAMPLES_DIR / name).stat().st_size
    start = nginx.mark()
    with nd2.ND2File(nginx.url(name)) as f:
        _ = f.metadata, f.attributes, f.text_info, f.experiment
    moved = body_bytes(nginx.entries_since(start))
    assert moved < 0.1 * size  # the frame (2.6 MB of 2.8) is not read


# -------------------------------------------------------------- bad sources
def test_refused_port_names_the_url() -> None:
    url = f"http://127.0.0.1:{refused_port()}/samples/x.nd2"
    with pytest.raises(ConnectionError, match="cannot connect") as info:
        nd2.ND2File(url)
    assert url in str(info.value)


def test_unknown_host_names_the_url() -> None:
    aiohttp = pytest.importorskip("aiohttp")
    url = "http://nd2-tests.invalid/x.nd2"  # .invalid never resolves (RFC 2606)
    options = {"client_kwargs": {"timeout": aiohttp.ClientTimeout(total=30)}}
    with pytest.raises((ConnectionError, TimeoutError)) as info:
        nd2.ND2File(url, storage_options=options)
    assert url in str(info.value)


def test_missing_nginx_fails_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import remote_servers

    monkeypatch.setattr(remote_servers, "NGINX_BINARY", str(tmp_path / "no-nginx"))
    with pytest.raises(RuntimeError, match="nginx-light"):
        remote_servers.Nginx(tmp_path)


def test_http_403_is_permission_error(nginx: Nginx) -> None:
    url = nginx.url("dims_z5t3c2y32x32.nd2", "forbidden")
    with pytest.raises(PermissionError, match="403") as info:
        nd2.ND2File(url)
    assert info.value.filename == url
    assert url in str(info.value)


def test_http_404_is_file_not_found(nginx: Nginx) -> None:
    url = nginx.url("no-such-file.nd2")
    with pytest.raises(FileNotFoundError, match="404") as info:
        nd2.ND2File(url)
    assert info.value.filename == url


def test_s3_missing_key_is_file_not_found(s3: S3Server) -> None:
    url = s3.url("no-such-file.nd2")
    with pytest.raises(FileNotFoundError) as info:
        nd2.ND2File(url, storage_options=s3.storage_options)
    assert info.value.filename == url


@pytest.mark.parametrize("name", ["pyND2SDK_file02.nd2", "lim_rgb8_y40x50.nd2"])
def test_server_ignoring_ranges_is_refused(name: str, nginx: Nginx) -> None:
    url = nginx.url(name, "noranges")
    with pytest.raises(OSError, match="ignores HTTP Range requests") as info:
        nd2.ND2File(url)
    assert url in str(info.value)
    assert not isinstance(info.value, nd2.ND2Error)


def test_remote_content_not_nd2(nginx: Nginx) -> None:
    url = nginx.url("not-nd2.bin")
    with pytest.raises(NotND2Error, match="not an ND2 file") as info:
        nd2.ND2File(url)
    assert str(info.value).startswith(url)


def test_text_mode_file_object_is_type_error() -> None:
    path = SAMPLES_DIR / "lim_rgb8_y40x50.nd2"
    with open(path, encoding="latin-1") as fh:
        with pytest.raises(TypeError, match="text mode") as info:
            nd2.ND2File(fh)  # type: ignore[arg-type]
        assert repr(fh) in str(info.value)
        with pytest.raises(TypeError, match="text mode"):
            nd2.is_supported_file(fh)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="text mode"):
        nd2.ND2File(io.StringIO("hello"))  # type: ignore[arg-type]


def test_non_seekable_file_object_is_type_error() -> None:
    stream = NonSeekable((SAMPLES_DIR / "lim_rgb8_y40x50.nd2").read_bytes())
    with pytest.raises(TypeError, match="not seekable") as info:
        nd2.ND2File(stream)
    assert repr(stream) in str(info.value)


def test_file_object_not_nd2_is_not_nd2_error() -> None:
    blob = io.BytesIO(b"hello, this is no ND2 file" * 20)
    with pytest.raises(NotND2Error, match="not an ND2 file") as info:
        nd2.ND2File(blob)
    assert str(info.value).startswith(repr(blob))
    assert not blob.closed


def test_closed_file_object() -> None:
    blob = io.BytesIO(b"")
    blob.close()
    with pytest.raises(ValueError, match="closed file"):
        nd2.ND2File(blob)


def test_other_objects_are_type_errors() -> None:
    with pytest.raises(TypeError, match="path, a URL or a binary file object"):
        nd2.ND2File(42)  # type: ignore[arg-type]


def test_storage_options_only_for_urls() -> None:
    with pytest.raises(TypeError, match="storage_options"):
        nd2.ND2File(SAMPLES_DIR / "lim_rgb8_y40x50.nd2", storage_options={"anon": True})


def test_missing_fsspec_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fsspec", None)
    with pytest.raises(ImportError, match=r"nd2\[fsspec\]"):
        nd2.ND2File("http://127.0.0.1:1/x.nd2")


# ------------------------------------------------------ life cycle, pickling
def test_url_pickles_as_url_and_options(s3: S3Server, nginx: Nginx) -> None:
    name = "lim_p4z3_u16_y64x64.nd2"
    want = nd2.imread(SAMPLES_DIR / name)
    with nd2.ND2File(s3.url(name), storage_options=s3.storage_options) as f:
        state = f.__getstate__()
        assert state["path"] == s3.url(name)
        assert state["storage_options"] == s3.storage_options
        g = pickle.loads(pickle.dumps(f))
    with g:
        np.testing.assert_array_equal(g.asarray(), want)
    with nd2.ND2File(nginx.url(name)) as f:
        f.close()
        h = pickle.loads(pickle.dumps(f))
    assert h.closed
    h.open()
    with h:
        np.testing.assert_array_equal(h.asarray(), want)
    source = pickle.loads(pickle.dumps(URLSource(nginx.url(name))))
    assert source.size == (SAMPLES_DIR / name).stat().st_size
    source.close()


def test_file_object_refuses_pickling() -> None:
    blob = io.BytesIO((SAMPLES_DIR / "lim_rgb8_y40x50.nd2").read_bytes())
    with nd2.ND2File(blob) as f:
        with pytest.raises(TypeError, match="file object") as info:
            pickle.dumps(f)
        assert repr(blob) in str(info.value)
        with pytest.raises(TypeError, match="file object"):
            pickle.dumps(f._rdr.chunks.source)


def test_close_and_reopen(nginx: Nginx) -> None:
    path = SAMPLES_DIR / "lim_t5c3_u8_y33x61_padded.nd2"
    want = nd2.imread(path)
    f = nd2.ND2File(nginx.url(path.name))
    f.close()
    assert f.closed
    with pytest.raises(ValueError, match="closed file"):
        f.read_frame(0)
    with f:
        np.testing.assert_array_equal(f.asarray(), want)
    with open(path, "rb") as fh:
        fh.seek(7)
        f = nd2.ND2File(fh)
        f.read_frame(1)
        f.close()
        assert not fh.closed  # ours to read, the caller's to close
        assert fh.tell() == 7  # put back where it was
        f.open()
        np.testing.assert_array_equal(f.asarray(), want)
        f.close()


def test_remote_frames_are_not_memory_views(nginx: Nginx) -> None:
    with nd2.ND2File(nginx.url("lim_t3z5c2_u16_y48x64.nd2")) as f:
        assert f._rdr.chunks.buffer is None
        assert f._rdr.chunks.array is None
        frame = f.read_frame(3)
        assert frame.base is None or not isinstance(frame.base, memoryview)
        region = f.read_frame(3, region=(slice(5, 20), slice(10, 30)), channels=1)
        np.testing.assert_array_equal(region, frame[1, 5:20, 10:30])


def test_repr_names_the_source(nginx: Nginx) -> None:
    with nd2.ND2File(nginx.url("lim_rgb8_y40x50.nd2")) as f:
        assert "'lim_rgb8_y40x50.nd2'" in repr(f)
    blob = io.BytesIO((SAMPLES_DIR / "lim_rgb8_y40x50.nd2").read_bytes())
    with nd2.ND2File(blob) as f:
        assert "BytesIO" in repr(f)
    assert "(closed)" in repr(f)


def dask_ready() -> bool:
    return importlib.util.find_spec("nd2.lazy") is not None


@pytest.mark.skipif(not dask_ready(), reason="nd2.lazy (ND2File.to_dask) is not written yet")
def test_to_dask_processes_scheduler_over_http(nginx: Nginx) -> None:
    pytest.importorskip("dask")
    name = "lim_t3z5c2_u16_y48x64.nd2"
    with nd2.ND2File(nginx.url(name)) as f:
        arr = f.to_dask()
    got = arr.compute(scheduler="processes", num_workers=2)
    np.testing.assert_array_equal(got, nd2.imread(SAMPLES_DIR / name))
    lazy = nd2.imread(nginx.url(name), dask=True)
    np.testing.assert_array_equal(lazy.compute(), got)  # type: ignore[union-attr]


# ------------------------------------------------------------------ threads
@pytest.mark.parametrize("kind", ["http", "s3", "bytesio"])
def test_concurrent_reads(kind: str, nginx: Nginx, s3: S3Server) -> None:
    name = "example-timelapse.nd2"  # 53 frames
    path = SAMPLES_DIR / name
    if kind == "bytesio":
        f = nd2.ND2File(io.BytesIO(path.read_bytes()))
    else:
        f = open_remote(kind, name, nginx, s3)
    with nd2.ND2File(path) as local, f:
        want = local.asarray()
        order = [i % len(want) for i in range(3 * len(want))]
        barrier = threading.Barrier(8)

        def read(index: int) -> tuple[int, np.ndarray]:
            if index < 8:
                barrier.wait(10)  # all threads start together
            return index, f.read_frame(index)

        with ThreadPoolExecutor(8) as pool:
            for index, frame in pool.map(read, order):
                np.testing.assert_array_equal(frame, want[index])


# ------------------------------------------------------ module-level helpers
def test_is_supported_file_and_is_legacy_on_sources(nginx: Nginx, s3: S3Server) -> None:
    name = "lim_rgb8_y40x50.nd2"
    assert nd2.is_supported_file(nginx.url(name))
    assert not nd2.is_legacy(nginx.url(name))
    assert not nd2.is_supported_file(nginx.url("not-nd2.bin"))
    assert nd2.is_supported_file(s3.url(name), storage_options=s3.storage_options)
    with open(SAMPLES_DIR / name, "rb") as fh:
        fh.seek(100)
        assert nd2.is_supported_file(fh)
        assert not nd2.is_legacy(fh)
        assert fh.tell() == 100
    legacy = io.BytesIO(b"\x00\x00\x00\x0cjP  \r\n\x87\n" + bytes(100))
    assert nd2.is_supported_file(legacy)
    assert nd2.is_legacy(legacy)
    assert nd2.is_supported_file(SAMPLES_DIR / name, lambda p: open(p, "rb"))  # noqa: SIM115
    with pytest.raises(TypeError, match="text mode"):
        nd2.is_supported_file(SAMPLES_DIR / name, open)
    with pytest.raises(FileNotFoundError):
        nd2.is_supported_file(nginx.url("missing.nd2"))


def test_open_source_kinds(tmp_path: Path) -> None:
    path = SAMPLES_DIR / "lim_rgb8_y40x50.nd2"
    local = open_source(path)
    assert local.local_path == str(path) and local.memory_map() is not None
    local.close()
    assert local.closed
    blob = io.BytesIO(path.read_bytes())
    source = open_source(blob)
    assert isinstance(source, FileObjectSource)
    assert source.size == path.stat().st_size
    assert source.read(source.size - 4, 100) == path.read_bytes()[-4:]  # short at the end
    assert source.local_path is None
    url = open_source(path.as_uri())
    assert isinstance(url, URLSource) and url.local_path == str(path)
    assert url.read(0, 4) == path.read_bytes()[:4]
    assert url.read(url.size - TRAILER_SIZE, TRAILER_SIZE) == path.read_bytes()[-TRAILER_SIZE:]
    url.close()
    with pytest.raises(ValueError, match="closed"):
        url.read(0, 4)


# ------------------------------------------------- other users of the source
def test_write_nd2_from_url(nginx: Nginx, tmp_path: Path) -> None:
    name = "lim_t3z5c2_u16_y48x64.nd2"
    with nd2.ND2File(nginx.url(name)) as f:
        out = f.write_nd2(tmp_path / "copy.nd2")
    with nd2.ND2File(out) as copy:
        np.testing.assert_array_equal(copy.asarray(), nd2.imread(SAMPLES_DIR / name))


def test_write_nd2_onto_the_file_object_source_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.nd2"
    shutil.copy(SAMPLES_DIR / "lim_rgb8_y40x50.nd2", path)
    with open(path, "rb") as fh, nd2.ND2File(fh) as f, pytest.raises(ValueError, match="itself"):
        f.write_nd2(path)
    with nd2.ND2File(io.BytesIO(path.read_bytes())) as f:
        f.write_nd2(path)  # a copy in memory is not the file
    assert nd2.is_supported_file(path)


def test_write_nd2_onto_the_file_url_source_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.nd2"
    shutil.copy(SAMPLES_DIR / "lim_rgb8_y40x50.nd2", path)
    with nd2.ND2File(path.as_uri()) as f, pytest.raises(ValueError, match="itself"):
        f.write_nd2(path)


def test_validate_frames_over_http(nginx: Nginx) -> None:
    name = "example-zstack.nd2"
    with nd2.ND2File(nginx.url(name), validate_frames=True) as f:
        np.testing.assert_array_equal(f.asarray(), nd2.imread(SAMPLES_DIR / name))


def test_rescue_nd2_from_url(nginx: Nginx) -> None:
    name = "lim_t3z5c2_u16_y48x64.nd2"
    want = list(nd2.rescue_nd2(SAMPLES_DIR / name, (48, 64, 2), verbose=False))
    got = list(nd2.rescue_nd2(nginx.url(name), (48, 64, 2), verbose=False))
    assert len(got) == len(want) == 15
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


@pytest.fixture(autouse=True)
def _no_leaked_handles() -> Iterator[None]:
    """Tests close what they open: no file descriptor of a sample stays open."""
    yield
    if sys.platform.startswith("linux"):
        fds = os.listdir("/proc/self/fd")
        targets = set()
        for fd in fds:
            try:
                targets.add(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:
                pass
        assert not {t for t in targets if t.startswith(str(SAMPLES_DIR))}
