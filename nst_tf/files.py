"""Files written whole or not at all, and their SHA-256: the two helpers every module shares."""

import hashlib
import os
import tempfile
from pathlib import Path


def atomic_write(path, write):
    """Call `write(tmp_path)`, then rename onto `path`: readers see the old file or the new one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path, text):
    """`path.write_text(text)`, atomically."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def sha256_of(path, open_file=open):
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks (`open_file`: e.g. Beam's FileSystems.open)."""
    digest = hashlib.sha256()
    with open_file(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
