"""Where archives and exports live: a local path, `file://`, `s3://bucket/prefix` or Azure Blob.

Everything goes through `pyarrow.fs`, so the same code writes a local disk, S3 (or an
S3-compatible store: endpoint, region and keys from `ObjectStoreOptions`, else the standard AWS
variables and credential chain that pyarrow reads itself) and Azure Blob Storage
(`abfs://container/prefix` or `abfs://container@account.dfs.core.windows.net/prefix`; account
and key from the options, else Azure's default credential).

Commit points need an exclusive create ("write this object only if it does not exist"): a local
path uses a hard link of a fully written temp file (atomic, fails if the name exists); S3 uses a
conditional PUT (`If-None-Match: *`) through boto3, and Azure Blob a Put Blob with the same
condition, signed with the account key (pyarrow can send neither). Azure with another credential
(no account key) falls back to check-then-write and read back, which catches every loser except
one racing within the same few milliseconds.

DuckDB reads remote files through a per-location fsspec wrapper of the same pyarrow filesystem
(its own S3 support is an extension it would download at run time, which this service must not).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import itertools
import os
import threading
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, unquote, urlsplit

import pyarrow.fs as pafs

from storage.errors import InvalidQueryError

__all__ = ["Location", "ObjectStoreOptions", "is_remote_url", "open_location"]

_CHUNK: Final = 1 << 20
_DUCKDB_PROTOCOLS = itertools.count(1)


@dataclass(frozen=True, slots=True)
class ObjectStoreOptions:
    """Connection settings for object stores; None means pyarrow's own default for that setting."""

    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    azure_account_name: str | None = None
    azure_account_key: str | None = None
    #: `http(s)://host:port` of the Blob service (Azurite, sovereign clouds); default Azure's.
    azure_blob_endpoint: str | None = None


def is_remote_url(url: str) -> bool:
    """Whether `url` names an object store (s3://, abfs://, abfss://, az://)."""
    return urlsplit(url).scheme.lower() in ("s3", "abfs", "abfss", "az")


class Location:
    """A directory on some filesystem: relative paths (with `/`) resolve under `base`."""

    def __init__(
        self, url: str, fs: pafs.FileSystem, base: str, kind: str, options: ObjectStoreOptions
    ) -> None:
        self.url = url
        self.fs = fs
        self.base = base.rstrip("/")
        self.kind = kind
        self.options = options
        self._duckdb_fs: Any = None
        self._lock = threading.Lock()
        #: The Azure storage account (Azure locations only).
        self.account = options.azure_account_name or ""

    def __repr__(self) -> str:
        return f"Location({self.url!r})"

    @property
    def is_local(self) -> bool:
        """True for a path on this machine's disk."""
        return self.kind == "local"

    def full(self, rel: str) -> str:
        """The filesystem path of a relative path."""
        return f"{self.base}/{rel}" if rel else self.base

    def url_of(self, rel: str) -> str:
        """A URL (or local path) naming `rel`, for messages and manifests."""
        return f"{self.url.rstrip('/')}/{rel}"

    # -- reading ------------------------------------------------------------------------------

    def exists(self, rel: str) -> bool:
        """Whether a file exists at `rel`."""
        return bool(self.fs.get_file_info(self.full(rel)).type == pafs.FileType.File)

    def size(self, rel: str) -> int | None:
        """The byte size of the file at `rel`, None when missing."""
        info = self.fs.get_file_info(self.full(rel))
        return int(info.size) if info.type == pafs.FileType.File else None

    def read_bytes(self, rel: str) -> bytes:
        """The whole file (manifests and small records only)."""
        with self.fs.open_input_stream(self.full(rel)) as fh:
            data: bytes = fh.read()
        return data

    def sha256(self, rel: str) -> tuple[str, int]:
        """Hex sha256 and byte count of the file at `rel`, read back from the store in 1 MiB chunks."""
        digest, size = hashlib.sha256(), 0
        with self.fs.open_input_stream(self.full(rel)) as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        return digest.hexdigest(), size

    def list_files(self, rel_dir: str = "", *, recursive: bool = True) -> list[str]:
        """Relative paths of the files under `rel_dir`, sorted (directories and markers left out)."""
        selector = pafs.FileSelector(self.full(rel_dir), allow_not_found=True, recursive=recursive)
        prefix = len(self.base) + 1
        return sorted(
            i.path[prefix:] for i in self.fs.get_file_info(selector) if i.type == pafs.FileType.File
        )

    def list_dirs(self, rel_dir: str = "") -> list[str]:
        """Relative paths of the directories directly under `rel_dir`, sorted."""
        selector = pafs.FileSelector(self.full(rel_dir), allow_not_found=True, recursive=False)
        prefix = len(self.base) + 1
        return sorted(
            i.path[prefix:] for i in self.fs.get_file_info(selector) if i.type == pafs.FileType.Directory
        )

    # -- writing ------------------------------------------------------------------------------

    def open_output(self, rel: str) -> Any:
        """A pyarrow output stream for a new file at `rel` (parents created where that means anything)."""
        if self.is_local:
            Path(self.full(rel)).parent.mkdir(parents=True, exist_ok=True)
        return self.fs.open_output_stream(self.full(rel))

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write (or replace) a small file; durable on a local disk."""
        with self.open_output(rel) as out:
            out.write(data)
        self.make_durable([rel])

    def make_durable(self, rels: list[str]) -> None:
        """Fsync written files and their directories on a local disk (object stores are durable on PUT)."""
        if not self.is_local:
            return
        paths = [Path(self.full(r)) for r in rels]
        for path in paths:
            _fsync(path)
        for directory in {p.parent for p in paths}:
            _fsync(directory)

    def create_exclusive(self, rel: str, data: bytes) -> bool:
        """Create `rel` holding `data` only if nothing exists there; False when it existed.

        The commit primitive of manifests, holds and deletion records (see the module docstring).
        """
        if self.is_local:
            return _link_exclusive(Path(self.full(rel)), data)
        if self.kind == "s3":
            return self._s3_put_if_absent(rel, data)
        if self.kind == "azure" and self.options.azure_account_key:
            return _azure_put_if_absent(self, rel, data)
        if self.exists(rel):
            return False
        self.write_bytes(rel, data)
        return self.read_bytes(rel) == data

    def _s3_put_if_absent(self, rel: str, data: bytes) -> bool:
        from botocore.exceptions import ClientError  # type: ignore[import-untyped]

        bucket, key = self.full(rel).split("/", 1)
        try:
            self.s3_client().put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in (
                "PreconditionFailed",
                "ConditionalRequestConflict",
            ):
                return False
            raise
        return True

    def delete(self, rel: str) -> None:
        """Delete a file; a missing one is not an error."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_file(self.full(rel))

    # -- S3 specifics ---------------------------------------------------------------------------

    def s3_client(self) -> Any:
        """A boto3 S3 client for this location (conditional writes, Object Lock legal holds)."""
        import boto3  # type: ignore[import-untyped]

        o = self.options
        kwargs: dict[str, Any] = {}
        if o.s3_endpoint_url:
            kwargs["endpoint_url"] = o.s3_endpoint_url
        if o.s3_region:
            kwargs["region_name"] = o.s3_region
        if o.s3_access_key and o.s3_secret_key:
            kwargs["aws_access_key_id"] = o.s3_access_key
            kwargs["aws_secret_access_key"] = o.s3_secret_key
        return boto3.client("s3", **kwargs)

    # -- DuckDB ---------------------------------------------------------------------------------

    def duckdb_path(self, rel: str) -> str:
        """What DuckDB's read_parquet should be given for `rel` (see `duckdb_filesystem`)."""
        if self.is_local:
            return self.full(rel)
        return f"{self.duckdb_filesystem().protocol}://{self.full(rel)}"

    def duckdb_filesystem(self) -> Any:
        """An fsspec filesystem over this location's pyarrow one, under a protocol of its own."""
        with self._lock:
            if self._duckdb_fs is None:
                self._duckdb_fs = _fsspec_wrapper(self.fs, f"govtrackarchive{next(_DUCKDB_PROTOCOLS)}")
            return self._duckdb_fs


def _fsspec_wrapper(fs: pafs.FileSystem, protocol: str) -> Any:
    from fsspec.implementations.arrow import ArrowFSWrapper  # type: ignore[import-untyped]

    class _Wrapper(ArrowFSWrapper):  # type: ignore[misc]
        cachable = False

        @classmethod
        def _strip_protocol(cls, path: Any) -> Any:
            if isinstance(path, list):
                return [cls._strip_protocol(p) for p in path]
            return str(path).removeprefix(f"{protocol}://").rstrip("/")

    _Wrapper.protocol = protocol
    return _Wrapper(fs)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _link_exclusive(path: Path, data: bytes) -> bool:
    """Write a temp file, fsync it, hard-link it to `path` (fails if taken), fsync the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        _fsync(path.parent)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _azure_put_if_absent(location: Location, rel: str, data: bytes) -> bool:
    """Put Blob with `If-None-Match: *`, signed with the account key (pyarrow cannot send it)."""
    o = location.options
    account = location.account
    key = o.azure_account_key or ""
    container, _, blob = location.full(rel).partition("/")
    path = f"/{container}/{quote(blob, safe='/=')}"
    if o.azure_blob_endpoint:  # an emulator: path-style, the account in the path (and twice when signed)
        endpoint = urlsplit(o.azure_blob_endpoint)
        url, resource = (
            f"{endpoint.scheme}://{endpoint.netloc}/{account}{path}",
            f"/{account}/{account}{path}",
        )
    else:
        url, resource = f"https://{account}.blob.core.windows.net{path}", f"/{account}{path}"
    headers = {
        "x-ms-blob-type": "BlockBlob",
        "x-ms-date": formatdate(usegmt=True),
        "x-ms-version": "2021-08-06",
    }
    canonical = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
    length = str(len(data)) if data else ""
    kind = "application/octet-stream"  # else urllib sends (unsigned) form encoding
    to_sign = f"PUT\n\n\n{length}\n\n{kind}\n\n\n\n*\n\n\n{canonical}{resource}"
    signature = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest())
    request = urllib.request.Request(url, data=data, method="PUT")  # noqa: S310 - the configured endpoint
    for k, v in {
        **headers,
        "Content-Type": kind,
        "If-None-Match": "*",
        "Authorization": f"SharedKey {account}:{signature.decode()}",
    }.items():
        request.add_header(k, v)
    try:
        with urllib.request.urlopen(request, timeout=30):  # noqa: S310
            return True
    except urllib.error.HTTPError as exc:
        if exc.code in (409, 412):  # BlobAlreadyExists / ConditionNotMet
            return False
        raise OSError(f"Azure Put Blob {rel} failed: {exc.code} {exc.reason}") from exc


def open_location(url: str, options: ObjectStoreOptions | None = None) -> Location:
    """The Location a URL or path names; 400-style InvalidQueryError for an unsupported scheme."""
    options = options or ObjectStoreOptions()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("", "file") or len(scheme) == 1:  # one letter: a Windows drive
        local = unquote(parts.netloc + parts.path) if scheme == "file" else url
        return Location(url, pafs.LocalFileSystem(), str(Path(local).absolute()), "local", options)
    if scheme == "s3":
        return Location(url, _s3(options), f"{parts.netloc}{unquote(parts.path)}", "s3", options)
    if scheme in ("abfs", "abfss", "az"):
        container, _, host = parts.netloc.partition("@")
        account = host.split(".", 1)[0] if host else options.azure_account_name
        if not account:
            raise InvalidQueryError(f"{url}: name the storage account (container@account...) or configure it")
        fs = _azure(account, options)
        location = Location(url, fs, f"{container}{unquote(parts.path)}", "azure", options)
        location.account = account
        return location
    raise InvalidQueryError(
        f"unsupported archive or export URL scheme {scheme!r}: use a path, s3:// or abfs://"
    )


def _s3(o: ObjectStoreOptions) -> pafs.FileSystem:
    kwargs: dict[str, Any] = {}
    if o.s3_endpoint_url:
        endpoint = urlsplit(o.s3_endpoint_url)
        kwargs["endpoint_override"] = endpoint.netloc or o.s3_endpoint_url
        kwargs["scheme"] = endpoint.scheme or "https"
    if o.s3_region:
        kwargs["region"] = o.s3_region
    if o.s3_access_key and o.s3_secret_key:
        kwargs["access_key"] = o.s3_access_key
        kwargs["secret_key"] = o.s3_secret_key
    return pafs.S3FileSystem(**kwargs)


def _azure(account: str, o: ObjectStoreOptions) -> pafs.FileSystem:
    kwargs: dict[str, Any] = {"account_name": account}
    if o.azure_account_key:
        kwargs["account_key"] = o.azure_account_key
    if o.azure_blob_endpoint:
        endpoint = urlsplit(o.azure_blob_endpoint)
        # Emulators have no Data Lake endpoint: pointing it at the Blob one makes pyarrow's
        # hierarchical-namespace probe get a plain "no" instead of a DNS failure.
        kwargs.update(
            blob_storage_authority=endpoint.netloc,
            blob_storage_scheme=endpoint.scheme,
            dfs_storage_authority=endpoint.netloc,
            dfs_storage_scheme=endpoint.scheme,
        )
    return pafs.AzureFileSystem(**kwargs)
