"""Object storage behind one small interface: a local directory (embedded default) or S3 (production).

Used for the landing zone and the warm/cold tiers. ``S3ObjectStore`` takes any boto3 S3 client (the Dagster
wiring hands it the client of dagster-aws's ``S3Resource``).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    problem: str | None = None  # why the object must not be read: link_outside_store, dangling_link, not_a_file
    detail: str = ""


class ObjectStore:
    """Interface: list, read, write and delete objects by key ('/'-separated, relative to the store root)."""

    uri: str

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        raise NotImplementedError

    def open(self, key: str) -> BinaryIO:
        raise NotImplementedError

    def put_file(self, key: str, path: Path, storage_class: str | None = None) -> None:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError


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
                yield ObjectInfo(key, 0, *problem)
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

    def put_file(self, key: str, path: Path, storage_class: str | None = None) -> None:
        target = self.root / (f"{storage_class.lower()}/{key}" if storage_class else key)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)

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
                yield ObjectInfo(obj["Key"][strip:], obj["Size"])

    def open(self, key: str) -> BinaryIO:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]

    def put_file(self, key: str, path: Path, storage_class: str | None = None) -> None:
        extra = {"StorageClass": storage_class} if storage_class else {}
        self.client.upload_file(str(path), self.bucket, self._key(key), ExtraArgs=extra)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
