"""Fixtures: a real OpenLDAP slapd seeded from `fixtures/*.ldif`, and LdapConfig pointing at it.

`slapd` is shared by the whole session and must not be changed by a test; a test that modifies
entries, restarts or stops the server takes `fresh_slapd`, its own server seeded the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from syncd.config import LdapConfig
from tests.ldap.slapd import (
    SERVICE_DN,
    SERVICE_PASSWORD,
    SUFFIX,
    Slapd,
    SlapdUnavailable,
    TlsMaterial,
    find_tool,
    make_tls_material,
)

FIXTURES = Path(__file__).parent / "fixtures"
SEED = (FIXTURES / "base.ldif", FIXTURES / "departments.ldif", FIXTURES / "people.ldif")
ROOT_DN = f"ou=D0001,ou=departments,{SUFFIX}"  # the unit's root department, base of both searches


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    """A throwaway CA and a server certificate for 127.0.0.1, once per session."""
    try:
        return make_tls_material(tmp_path_factory.mktemp("tls"))
    except SlapdUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


def _started(directory: Path, tls: TlsMaterial) -> Slapd:
    try:
        find_tool("slapd")
        server = Slapd(directory, tls)
        server.load(SEED)
        server.start()
    except SlapdUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    return server


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory, tls_material: TlsMaterial) -> Iterator[Slapd]:
    """The shared, read-only server with the seeded fixtures."""
    server = _started(tmp_path_factory.mktemp("slapd"), tls_material)
    yield server
    server.stop()


@pytest.fixture
def fresh_slapd(tmp_path: Path, tls_material: TlsMaterial) -> Iterator[Slapd]:
    """A server of this test's own, seeded like `slapd`: change it, restart it, stop it."""
    server = _started(tmp_path / "slapd", tls_material)
    yield server
    server.stop()


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    """The service account's bind password, in a file as production keeps it."""
    path = tmp_path / "ldap-password"
    path.write_text(SERVICE_PASSWORD + "\n", encoding="utf-8")
    return path


@pytest.fixture
def ldap_config(password_file: Path) -> Callable[..., LdapConfig]:
    """`ldap_config(server, **overrides)`: an LdapConfig for the fixture tree, plain LDAP unless overridden."""

    def make(server: Slapd, **overrides: Any) -> LdapConfig:
        values: dict[str, Any] = {
            "url": server.url, "allow_plaintext": True, "bind_dn": SERVICE_DN, "password_file": password_file,
            "people_base": ROOT_DN, "departments_base": ROOT_DN, "page_size": 5, "timeout": 5,
        }
        values.update(overrides)
        return LdapConfig(**values)

    return make
