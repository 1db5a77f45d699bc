"""An image's file system, read from its layers as the container runtime would stack them.

Each layer tar is streamed once (never written to disk, never held whole in memory) and its
digest is checked when it has been read to its end. What is kept is the metadata of every
path of the final file system (mode, owner, type), after applying each layer's whiteouts
(``.wh.<name>`` deletes a path of the layers below, ``.wh..wh..opq`` empties a folder of
them), and the bytes of the few files controls read: ``/etc/passwd`` and the package
databases (dpkg status, apk installed, Python ``*.dist-info/METADATA``).
"""

from __future__ import annotations

import posixpath
import re
import stat
import tarfile
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from k4c_pytest.outcomes import DataUnavailable
from k4c_pytest.sources.image_registry import BlobStream

MAX_WANTED_FILE = 32 * 1024 * 1024
_WANTED = re.compile(r"^/(etc/passwd|etc/group|var/lib/dpkg/status|var/lib/dpkg/status\.d/[^/]+|lib/apk/db/installed"
                     r"|.*/(site|dist)-packages/[^/]+\.dist-info/METADATA)$")
_TYPES = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.LNKTYPE: "hardlink", tarfile.SYMTYPE: "symlink",
          tarfile.DIRTYPE: "dir", tarfile.CHRTYPE: "char device", tarfile.BLKTYPE: "block device",
          tarfile.FIFOTYPE: "fifo", tarfile.CONTTYPE: "file"}


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A path of the image's final file system."""

    path: str
    type: str
    mode: int
    uid: int
    gid: int
    size: int
    #: index of the layer that last wrote it
    layer: int

    @property
    def permissions(self) -> str:
        """``-rwsr-xr-x`` as ``ls -l`` shows it."""
        kind = {"dir": stat.S_IFDIR, "symlink": stat.S_IFLNK}.get(self.type, stat.S_IFREG)
        return stat.filemode(kind | self.mode)

    def row(self) -> dict[str, Any]:
        return {"path": self.path, "mode": self.permissions, "owner": f"{self.uid}:{self.gid}", "layer": self.layer}


@dataclass(frozen=True, slots=True)
class Package:
    ecosystem: str
    name: str
    version: str
    #: the database it is listed in
    source: str

    def row(self) -> dict[str, str]:
        return {"ecosystem": self.ecosystem, "name": self.name, "version": self.version, "source": self.source}


def _norm(name: str) -> str:
    return "/" + posixpath.normpath("/" + name).lstrip("/") if name not in ("", ".", "./") else "/"


def _open_tar(stream: BlobStream, media_type: str) -> tarfile.TarFile:
    if "zstd" in media_type:
        raise DataUnavailable(stream.what, f"zstd-compressed layers ({media_type}) are not supported")
    mode = "r|gz" if "gzip" in media_type else "r|*"
    try:
        return tarfile.open(fileobj=stream, mode=mode)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataUnavailable(stream.what, f"not a readable layer tar ({media_type}): {exc}") from None


class Contents:
    """The final file system of one image: ``entries`` by path, plus the wanted files' bytes."""

    def __init__(self) -> None:
        self.entries: dict[str, FileEntry] = {}
        self.files: dict[str, bytes] = {}
        self.layers = 0

    # -- building ------------------------------------------------------------------------

    def _remove(self, path: str, children_only: bool = False) -> None:
        prefix = path.rstrip("/") + "/"
        for key in [k for k in self.entries if k.startswith(prefix) or (not children_only and k == path)]:
            del self.entries[key]
            self.files.pop(key, None)

    def add_layer(self, stream: BlobStream, media_type: str) -> None:
        """Stack one layer (streamed, digest-checked) on what is there."""
        index = self.layers
        self.layers += 1
        entries: dict[str, FileEntry] = {}
        files: dict[str, bytes] = {}
        whiteouts: list[str] = []
        opaque: list[str] = []
        tar = _open_tar(stream, media_type)
        try:
            for member in tar:
                path = _norm(member.name)
                base = posixpath.basename(path)
                if base == ".wh..wh..opq":
                    opaque.append(posixpath.dirname(path))
                    continue
                if base.startswith(".wh."):
                    whiteouts.append(posixpath.join(posixpath.dirname(path), base[4:]))
                    continue
                entries[path] = FileEntry(path, _TYPES.get(member.type, "other"), member.mode & 0o7777,
                                          member.uid, member.gid, member.size, index)
                if member.isfile() and _WANTED.match(path):
                    if member.size > MAX_WANTED_FILE:
                        raise DataUnavailable(stream.what, f"{path} is larger than {MAX_WANTED_FILE} bytes")
                    f = tar.extractfile(member)
                    files[path] = f.read() if f is not None else b""
        except (tarfile.TarError, OSError, EOFError, UnicodeDecodeError) as exc:
            raise DataUnavailable(stream.what, f"layer tar cut or malformed: {exc}") from None
        stream.verify()
        for path in whiteouts:
            self._remove(path)
        for path in opaque:
            self._remove(path, children_only=True)
        self.entries.update(entries)
        self.files.update(files)

    # -- what controls read ----------------------------------------------------------------

    def setuid(self) -> list[FileEntry]:
        """Regular files with the setuid or setgid bit."""
        return sorted((e for e in self.entries.values()
                       if e.type in ("file", "hardlink") and e.mode & (stat.S_ISUID | stat.S_ISGID)),
                      key=lambda e: e.path)

    def world_writable(self) -> list[FileEntry]:
        """Files and folders anyone may write; a folder with the sticky bit (``/tmp``) is not one,
        and neither is a symbolic link (its mode means nothing)."""
        out = []
        for e in self.entries.values():
            if e.type in ("symlink", "char device", "block device") or not e.mode & stat.S_IWOTH:
                continue
            if e.type == "dir" and e.mode & stat.S_ISVTX:
                continue
            out.append(e)
        return sorted(out, key=lambda e: e.path)

    def passwd(self) -> dict[str, int] | None:
        """User name -> uid from ``/etc/passwd``; None when the image has none."""
        data = self.files.get("/etc/passwd")
        if data is None:
            return None
        users: dict[str, int] = {}
        for line in data.decode("utf-8", "replace").splitlines():
            parts = line.split(":")
            if len(parts) >= 3 and parts[2].isdigit():
                users.setdefault(parts[0], int(parts[2]))
        return users

    def packages(self) -> list[Package]:
        """Installed packages from every package database found."""
        out: list[Package] = []
        for path, data in sorted(self.files.items()):
            text = data.decode("utf-8", "replace")
            if path == "/var/lib/dpkg/status" or path.startswith("/var/lib/dpkg/status.d/"):
                out += _dpkg(text, path)
            elif path == "/lib/apk/db/installed":
                out += _apk(text, path)
            elif path.endswith(".dist-info/METADATA"):
                out += _dist_info(text, path)
        return out

    def package_databases(self) -> list[str]:
        return sorted(p for p in self.files if p not in ("/etc/passwd", "/etc/group"))


def _paragraphs(text: str) -> Iterable[dict[str, str]]:
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        last = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and last:
                continue  # a continuation line (Description); no field k4c reads spans lines
            key, sep, value = line.partition(":")
            if sep:
                last = key.strip()
                fields.setdefault(last, value.strip())
        if fields:
            yield fields


def _dpkg(text: str, path: str) -> list[Package]:
    out = []
    for p in _paragraphs(text):
        status = p.get("Status", "install ok installed").split()
        if p.get("Package") and status[-1:] == ["installed"]:
            out.append(Package("deb", p["Package"], p.get("Version", ""), path))
    return out


def _apk(text: str, path: str) -> list[Package]:
    out = []
    for block in re.split(r"\n\s*\n", text):
        fields = dict(line.split(":", 1) for line in block.splitlines() if len(line) > 2 and line[1] == ":")
        if fields.get("P"):
            out.append(Package("apk", fields["P"], fields.get("V", ""), path))
    return out


def _dist_info(text: str, path: str) -> list[Package]:
    head = text.split("\n\n", 1)[0]
    fields = next(iter(_paragraphs(head)), {})
    name = fields.get("Name") or posixpath.basename(posixpath.dirname(path)).rsplit("-", 1)[0]
    return [Package("python", name, fields.get("Version", ""), path)]


def read(layers: list[dict[str, Any]], open_blob: Callable[[str], BlobStream], max_layer_bytes: int) -> Contents:
    """Stack ``layers`` (manifest descriptors) into Contents; ``open_blob(digest)`` streams one."""
    contents = Contents()
    for desc in layers:
        digest = desc.get("digest", "")
        size = desc.get("size")
        if isinstance(size, int) and size > max_layer_bytes:
            raise DataUnavailable(f"layer {digest}", f"{size} bytes, more than the size cap of {max_layer_bytes} "
                                                     "(--k4c-max-layer-size)")
        with open_blob(digest) as stream:
            stream.max_bytes = max_layer_bytes
            contents.add_layer(stream, desc.get("mediaType", ""))
    return contents
