"""Object storage behind one small interface: a local directory (embedded default) or S3 (production).

Used for the landing zone and the warm/cold tiers. ``S3ObjectStore`` takes any boto3 S3 client (the Dagster
wiring hands it the client of the ``S3Connection`` resource). Archive storage classes (S3 ``GLACIER``,
``DEEP_ARCHIVE``) make an object unreadable until ``restore``; a local store has no storage classes: its cold
tier is a directory that readers are not allowed into, and ``restore`` copies an object under ``restored/``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

#: S3 storage classes whose objects must be restored before a GET.
ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    storage_class: str | None = None
    sha256: str | None = None  # as recorded at upload (S3 user metadata); None where the store keeps none
    readable: bool = True      # False: archived and not (yet) restored
    problem: str | None = None  # why the object must not be read: link_outside_store, dangling_link, not_a_file
    detail: str = ""


def restored_copy_key(key: str) -> str:
    """Where a local store puts the readable copy of an archived object: ``cold/x`` → ``restored/x``."""
    return "restored/" + key.split("/", 1)[1]


def sha256_of(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    for chunk in iter(lambda: stream.read(1 << 20), b""):
        digest.update(chunk)
    return digest.hexdigest()


class ObjectStore:
    """Interface: list, read, write, copy, inspect, restore and delete objects by key ('/'-separated,
    relative to the store root)."""

    uri: str

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        raise NotImplementedError

    def open(self, key: str) -> BinaryIO:
        raise NotImplementedError

    def put_file(self, key: str, path: Path, storage_class: str | None = None, sha256: str | None = None) -> None:
        """Upload ``path`` to ``key`` (atomically: a reader sees the whole object or none)."""
        raise NotImplementedError

    def copy(self, src: str, dst: str, storage_class: str | None = None) -> None:
        """Copy an object within the store, into ``storage_class`` where the store has classes."""
        raise NotImplementedError

    def head(self, key: str) -> ObjectInfo | None:
        """Size, storage class, recorded checksum and readability of ``key``; None when it does not exist."""
        raise NotImplementedError

    def restore(self, key: str, days: int) -> str | None:
        """Make an archived object readable for ``days``: the key to read it at, or None while in progress."""
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def checksum(self, key: str) -> str:
        """sha256 of the stored bytes, read back from the store."""
        with self.open(key) as stream:
            return sha256_of(stream)


class LocalObjectStore(ObjectStore):
    def __init__(self, root: Path):
        self.root = Path(root)
        self.uri = str(self.root)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Regular files, plus the entries that must not be read, with the reason: links that leave the store
        or lead nowhere, and FIFOs, sockets and devices. Linked directories are not followed."""
        if not self.root.exists():
            return
        for path in sorted(self.root.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if not key.startswith(prefix):
                continue
            problem = self._problem(path)
            if problem is not None:
                yield ObjectInfo(key, 0, problem=problem[0], detail=problem[1])
            elif path.is_file():
                yield ObjectInfo(key, path.stat().st_size)

    def _problem(self, path: Path) -> tuple[str, str] | None:
        if path.is_symlink():
            target = path.resolve()
            if not target.exists():
                return "dangling_link", f"link to {os.readlink(path)}, which does not exist"
            if not target.is_relative_to(self.root.resolve()):
                return "link_outside_store", f"link to {target}, outside {self.root}"
        if path.exists() and not path.is_file() and not path.is_dir():
            return "not_a_file", "not a regular file (FIFO, socket or device)"
        return None

    def open(self, key: str) -> BinaryIO:
        path = self.root / key
        problem = self._problem(path) or (None if path.resolve().is_relative_to(self.root.resolve())
                                          else ("outside_store", f"{key} is outside {self.root}"))
        if problem is not None:
            raise PermissionError(f"refusing to read {key}: {problem[1]}")
        return open(path, "rb")

    def _place(self, key: str, write) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        write(part)
        os.replace(part, target)

    def put_file(self, key: str, path: Path, storage_class: str | None = None, sha256: str | None = None) -> None:
        self._place(key, lambda part: shutil.copyfile(path, part))

    def copy(self, src: str, dst: str, storage_class: str | None = None) -> None:
        self._place(dst, lambda part: shutil.copyfile(self.root / src, part))

    def head(self, key: str) -> ObjectInfo | None:
        path = self.root / key
        return ObjectInfo(key, path.stat().st_size) if path.is_file() else None

    def restore(self, key: str, days: int) -> str | None:
        readable = restored_copy_key(key)
        self.copy(key, readable)
        return readable

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)


class S3ObjectStore(ObjectStore):
    def __init__(self, client, bucket: str, prefix: str = ""):
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")
        self.uri = f"s3://{bucket}/{self.prefix}"

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        strip = len(self.prefix) + 1 if self.prefix else 0
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            for obj in page.get("Contents", []):
                yield ObjectInfo(obj["Key"][strip:], obj["Size"], obj.get("StorageClass"))

    def open(self, key: str) -> BinaryIO:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]

    def put_file(self, key: str, path: Path, storage_class: str | None = None, sha256: str | None = None) -> None:
        extra: dict = {"StorageClass": storage_class} if storage_class else {}
        if sha256:
            extra["Metadata"] = {"sha256": sha256}
        self.client.upload_file(str(path), self.bucket, self._key(key), ExtraArgs=extra)

    def copy(self, src: str, dst: str, storage_class: str | None = None) -> None:
        head = self.client.head_object(Bucket=self.bucket, Key=self._key(src))
        extra = {"Metadata": head.get("Metadata", {}), "MetadataDirective": "REPLACE"}
        if storage_class:
            extra["StorageClass"] = storage_class
        self.client.copy({"Bucket": self.bucket, "Key": self._key(src)}, self.bucket, self._key(dst),
                         ExtraArgs=extra)

    def head(self, key: str) -> ObjectInfo | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        storage_class = head.get("StorageClass", "STANDARD")
        restored = 'ongoing-request="false"' in head.get("Restore", "")
        return ObjectInfo(key, head["ContentLength"], storage_class, head.get("Metadata", {}).get("sha256"),
                          storage_class not in ARCHIVE_CLASSES or restored)

    def restore(self, key: str, days: int) -> str | None:
        info = self.head(key)
        if info is None:
            raise FileNotFoundError(f"{self.uri}/{key}")
        if info.readable:
            return key
        try:
            self.client.restore_object(Bucket=self.bucket, Key=self._key(key),
                                       RestoreRequest={"Days": days, "GlacierJobParameters": {"Tier": "Standard"}})
        except self.client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "RestoreAlreadyInProgress":
                raise
        info = self.head(key)
        return key if info is not None and info.readable else None

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
