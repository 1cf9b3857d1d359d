"""`syncd token list | revoke` and the one way secrets reach the service (README "Secrets").

The service runs under a dynamic UID (systemd `DynamicUser=`) that no file can be owned by, with the
supplementary group `syncd` (created by install.sh). Every secret it reads — the tokens file, the app
secret, the PostgreSQL, SMTP and webhook secrets — is therefore a file in /etc/syncd owned by root,
group `syncd`, mode 0640: readable by the service, re-read on every use, and by no other user.
"""

from __future__ import annotations

import fcntl
import grp
import json
import os
import stat
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from syncd.service.tokens import TokensError, load_tokens

SERVICE_GROUP = "syncd"
SECRET_MODE = 0o640


def share_with_service(path: Path, group: str = SERVICE_GROUP) -> str | None:
    """Give a secret file to the service's group, mode 0640; a note to print when that cannot be done."""
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        # Without the group only the file's owner reads it: right for a trial run as one user.
        return (f"{path} is readable by its owner only: the group {group!r} does not exist "
                f"(install.sh creates it: groupadd --system {group})")
    os.chown(path, -1, gid)
    path.chmod(SECRET_MODE)
    return None


def readable_by_service(path: Path, group: str = SERVICE_GROUP) -> str | None:
    """Why the service (a dynamic UID in `group`) could not read this file, or None when it can."""
    try:
        st = path.stat()
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    mode = stat.S_IMODE(st.st_mode)
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        gid = None
    if mode & stat.S_IROTH or (gid is not None and st.st_gid == gid and mode & stat.S_IRGRP):
        return None
    return (f"{path} (mode {mode:04o}) cannot be read by the service's dynamic user: "
            f"chgrp {group} {path} && chmod {SECRET_MODE:04o} {path}")


@dataclass(frozen=True, slots=True)
class Listed:
    """One token as `syncd token list` shows it: never its hash."""

    name: str
    role: str
    created: datetime | None


def list_tokens(path: Path) -> list[Listed]:
    """The tokens of the file, checked as the daemon checks them; none when it does not exist."""
    tokens = load_tokens(path)
    if not tokens:
        return []
    created = {entry["name"]: entry.get("created")
               for entry in tomllib.loads(path.read_text(encoding="utf-8")).get("token", [])}
    return [Listed(token.name, token.role, created.get(token.name)) for token in tokens]


def revoke_token(path: Path, name: str) -> None:
    """Remove the token named `name` from the file, in place (owner and mode kept); TokensError if absent."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError as exc:
        raise TokensError(f"{path}: does not exist, so there is no token {name!r}") from exc
    with os.fdopen(fd, "r+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # against a concurrent `syncd token add`
        text = handle.read().decode("utf-8")
        load_tokens(path)  # a malformed file is refused, not rewritten
        entries = tomllib.loads(text).get("token", [])
        kept = [entry for entry in entries if entry["name"] != name]
        if len(kept) == len(entries):
            raise TokensError(f"{path}: no token named {name!r} (see `syncd token list`)")
        body = "\n".join(_entry_text(entry) for entry in kept)
        handle.seek(0)
        handle.truncate()
        handle.write(body.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())


def _entry_text(entry: dict[str, object]) -> str:
    lines = ["[[token]]"]
    for key, value in entry.items():
        if isinstance(value, datetime):
            lines.append(f"{key} = {value.isoformat()}")
        else:  # json.dumps gives a valid TOML basic string
            lines.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
    return "\n".join(lines) + "\n"
