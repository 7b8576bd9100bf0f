"""Credentials for the fleet (a marketplace API key, miners' passwords) from an environment variable or a
secret file. A file that its group or other users can read is refused: a leaked key rents out, or takes
down, a site's machines. No secret value ever goes into an exception, a log line, the store or a document;
`Secret` holds one so that printing the object that carries it shows `***`, and `redact` scrubs it out of
text that came back from elsewhere (an error page, a command's output) before that text is kept."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from hashpivot.models.errors import ConfigError

MAX_SECRET_BYTES = 64 * 1024


def read_secret(env: str | None, file: str | None, what: str) -> str | None:
    """The secret named by environment variable `env` or stored in `file` (one of the two; None when neither
    is configured). `what` says in errors what it is for, e.g. "fleet.gpu_actuators[0] (h100) Vast.ai API key".
    The file must be a regular file with no group or other permission bits (mode & 0o077 == 0); surrounding
    whitespace (the trailing newline of `echo key > file`) is stripped. ConfigError, naming the variable or
    file and what to do, when it is missing, empty, unreadable or too open."""
    if env is not None and file is not None:
        raise ConfigError(f"{what}: give an environment variable or a secret file, not both")
    if env is not None:
        value = os.environ.get(env, "").strip()
        if not value:
            raise ConfigError(f"{what}: environment variable {env} is not set or empty (export it before starting hashpivot)")
        return value
    if file is not None:
        return _read_file(Path(file).expanduser(), what)
    return None


def _read_file(path: Path, what: str) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise ConfigError(f"{what}: secret file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"{what}: cannot open secret file {path} ({exc.strerror}; a symlink is refused)") from None
    try:
        info = os.fstat(fd)  # the file opened, not whatever the path names a moment later
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{what}: secret file {path} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise ConfigError(f"{what}: secret file {path} is readable by its group or others (mode {mode:04o}); "
                              f"run: chmod 600 {path}")
        data = os.read(fd, MAX_SECRET_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_SECRET_BYTES:
        raise ConfigError(f"{what}: secret file {path} is larger than {MAX_SECRET_BYTES // 1024} KiB; it should hold the secret only")
    try:
        value = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"{what}: secret file {path} is not UTF-8 text") from None
    if not value:
        raise ConfigError(f"{what}: secret file {path} is empty")
    return value


class Secret:
    """A secret value that shows as `***` in repr, str and f-strings; `reveal()` is the one way to read it,
    used only where it is sent (an Authorization header)."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return "***"

    def __reduce__(self):
        raise TypeError("a Secret is not pickled (it would leave the process in the clear)")


def redact(text: str, *secrets: Secret | str | None) -> str:
    """`text` with every occurrence of each secret replaced by `***`."""
    for s in secrets:
        value = s.reveal() if isinstance(s, Secret) else s
        if value:
            text = text.replace(value, "***")
    return text
