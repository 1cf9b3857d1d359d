"""A throwaway OpenLDAP slapd: its own directory, random loopback ports, a test CA, seeded offline.

Used by the LDAP tests' fixtures and by `bench/ldap_read.py`. Entries are loaded with `slapadd`
before the server starts (fast, and it lets fixtures carry fixed `modifyTimestamp`s, which
`ldapadd` refuses); changes made while it runs go through an ldap3 connection as the rootdn.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import ldap3

SUFFIX = "dc=audit,dc=example"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "synthetic-admin-secret"
SERVICE_DN = f"cn=syncd,ou=services,{SUFFIX}"  # what syncd binds as: read access, unlimited paging
SERVICE_PASSWORD = "synthetic-bind-secret"
LIMITED_DN = f"cn=limited,ou=services,{SUFFIX}"  # same access, but the server stops paging after 12 entries
LIMITED_TOTAL = 12
SEED_TIMESTAMP = "20240102030405Z"  # every seeded entry's modifyTimestamp unless its LDIF sets one
SCHEMA_DIR = Path("/etc/ldap/schema")
SCHEMAS = ("core", "cosine", "nis", "inetorgperson")
_START_TIMEOUT = 15.0
_STOP_TIMEOUT = 10.0


class SlapdUnavailable(RuntimeError):
    """slapd (or a tool it needs) is not installed, or it would not start."""


def find_tool(name: str) -> str:
    """The path of an OpenLDAP or OpenSSL tool, or SlapdUnavailable saying how to install it."""
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if os.access(p, os.X_OK)), None)
    if found is None:
        raise SlapdUnavailable(f"{name} not found: run `bash tests/services.sh` (installs slapd and ldap-utils)")
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    """A throwaway CA, a server certificate it signed (localhost, 127.0.0.1), and an unrelated CA."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    other_ca_file: Path  # signed nothing here: verifying the server against it must fail
    elsewhere_cert_file: Path  # signed by ca_file, but for elsewhere.example only: the name check must fail


def make_tls_material(directory: Path) -> TlsMaterial:
    """Generate the CA and server certificate with the openssl CLI (EC keys: fast)."""
    openssl = find_tool("openssl")
    directory.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=directory, check=True, capture_output=True)

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    ca_ext = ("-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name in ("ca", "other-ca"):
        run("req", "-x509", *ec, "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
            "-subj", f"/CN=syncd test {name}", *ca_ext)
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    for name, alt_names in (("server", "DNS:localhost,IP:127.0.0.1"), ("elsewhere", "DNS:elsewhere.example")):
        (directory / f"{name}.ext").write_text(
            f"subjectAltName={alt_names}\nextendedKeyUsage=serverAuth\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n", encoding="utf-8")
        run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    return TlsMaterial(directory / "ca.pem", directory / "server.pem", directory / "server.key",
                       directory / "other-ca.pem", directory / "elsewhere.pem")


def stamp_ldif(text: str, timestamp: str = SEED_TIMESTAMP) -> str:
    """LDIF whose every entry has a `modifyTimestamp` (and `createTimestamp`): the given one unless set."""
    entries = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith("#")]
        if not lines:
            continue
        names = {line.split(":", 1)[0].lower() for line in lines if not line.startswith(" ")}
        for attribute in ("modifyTimestamp", "createTimestamp"):
            if attribute.lower() not in names:
                lines.append(f"{attribute}: {timestamp}")
        entries.append("\n".join(lines))
    return "\n\n".join(entries) + "\n"


def _config(directory: Path, tls: TlsMaterial | None) -> str:
    includes = "\n".join(f"include {SCHEMA_DIR / name}.schema" for name in SCHEMAS)
    tls_lines = "" if tls is None else (
        f"TLSCACertificateFile {tls.ca_file}\nTLSCertificateFile {tls.cert_file}\n"
        f"TLSCertificateKeyFile {tls.key_file}\n")
    return f"""{includes}
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {directory}/slapd.pid
argsfile {directory}/slapd.args
{tls_lines}
# OpenLDAP's default: 500 entries per search unless a limit says otherwise (size.prtotal below).
sizelimit 500

database mdb
maxsize 8589934592
suffix "{SUFFIX}"
rootdn "{ADMIN_DN}"
rootpw {ADMIN_PASSWORD}
directory {directory}/db
index objectClass eq
index employeeNumber eq
# Paging past the size limit needs size.prtotal; LIMITED_DN shows what happens without it.
limits dn.exact="{SERVICE_DN}" size.prtotal=unlimited
limits dn.exact="{LIMITED_DN}" size.soft={LIMITED_TOTAL} size.hard={LIMITED_TOTAL} size.prtotal={LIMITED_TOTAL}
access to attrs=userPassword by anonymous auth by * none
access to * by dn.exact="{SERVICE_DN}" read by dn.exact="{LIMITED_DN}" read by * none
"""


class Slapd:
    """One slapd process over an mdb database in `directory`, on plain and (with TLS) ldaps ports."""

    def __init__(self, directory: Path, tls: TlsMaterial | None = None) -> None:
        self.directory = directory
        self.tls = tls
        self.port = free_port()
        self.tls_port = free_port() if tls is not None else None
        self._slapd = find_tool("slapd")
        self._process: subprocess.Popen[bytes] | None = None
        (directory / "db").mkdir(parents=True, exist_ok=True)
        self.config_file = directory / "slapd.conf"
        self.config_file.write_text(_config(directory, tls), encoding="utf-8")
        self.log_file = directory / "slapd.log"

    @property
    def url(self) -> str:
        """Plain LDAP (and StartTLS) on loopback."""
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        """LDAP over TLS, certificate for localhost and 127.0.0.1 signed by `tls.ca_file`."""
        if self.tls_port is None:
            raise SlapdUnavailable("this slapd was started without TLS")
        return f"ldaps://127.0.0.1:{self.tls_port}"

    def load(self, ldif: str | Iterable[Path], *, stamp: bool = True) -> None:
        """Add entries offline with slapadd (server stopped); `stamp` gives them SEED_TIMESTAMP."""
        if self.running:
            raise RuntimeError("slapadd needs the server stopped")
        text = ldif if isinstance(ldif, str) else "\n\n".join(p.read_text(encoding="utf-8") for p in ldif)
        if stamp:
            text = stamp_ldif(text)
        source = self.directory / "load.ldif"
        source.write_text(text, encoding="utf-8")
        self.load_file(source)

    def load_file(self, path: Path) -> None:
        """slapadd a prepared LDIF file in quick mode (server stopped)."""
        result = subprocess.run([find_tool("slapadd"), "-q", "-f", str(self.config_file), "-l", str(path)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise SlapdUnavailable(f"slapadd failed ({result.returncode}): {result.stderr.strip()[-2000:]}")

    @property
    def pid(self) -> int | None:
        """The slapd process id while it runs."""
        return self._process.pid if self.running and self._process is not None else None

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start slapd in the foreground of a child process and wait until every port answers."""
        urls = [f"ldap://127.0.0.1:{self.port}/"]
        if self.tls_port is not None:
            urls.append(f"ldaps://127.0.0.1:{self.tls_port}/")
        with self.log_file.open("ab") as log:
            # -d 0: stay in the foreground (so this process owns it) without debug output.
            self._process = subprocess.Popen(
                [self._slapd, "-f", str(self.config_file), "-h", " ".join(urls), "-d", "0"],
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + _START_TIMEOUT
        for port in [self.port, self.tls_port]:
            if port is not None:
                self._wait_for(port, deadline)

    def _wait_for(self, port: int, deadline: float) -> None:
        assert self._process is not None
        while True:
            if self._process.poll() is not None:
                raise SlapdUnavailable(f"slapd exited with {self._process.returncode}: {self._log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise SlapdUnavailable(f"slapd did not answer on port {port}: {self._log_tail()}") from None
                time.sleep(0.02)

    def _log_tail(self) -> str:
        text = self.log_file.read_text(encoding="utf-8", errors="replace") if self.log_file.exists() else ""
        return text.strip()[-2000:] or "(no output)"

    def stop(self) -> None:
        """Stop slapd (SIGTERM, then SIGKILL); its clients see their connections close."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def restart(self) -> None:
        """Stop and start again on the same ports and data: every open connection is dropped."""
        self.stop()
        self.start()

    def admin(self) -> ldap3.Connection:
        """A bound rootdn connection over plain LDAP, for changes while the server runs."""
        return ldap3.Connection(ldap3.Server(self.url, get_info=ldap3.NONE), ADMIN_DN, ADMIN_PASSWORD,
                                auto_bind=ldap3.AUTO_BIND_NO_TLS, raise_exceptions=True)

    def __enter__(self) -> Slapd:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
