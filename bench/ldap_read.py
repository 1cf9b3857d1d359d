"""Full paged read of a large directory through LdapSource, against a real slapd on loopback.

    python -m bench.ldap_read --people 100000 [--page-size 500] [--department-from dn] [--ldaps]

Seeds a throwaway slapd (tests/ldap/slapd.py) offline with `slapadd`: the synthetic bureau of
`bench.synthetic`, departments nested as `ou=<id>` and people as `uid=<工号>` under their department.
Then times `departments()` and `people()` end to end (client and server on the same machine) and
reports entries/s (per wall second and per client CPU second), the CPU seconds of this process
and of slapd, and this process's peak RSS.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import resource
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from bench.synthetic import generate_lazily
from connectors.sources.ldap_source import LdapSource
from syncd import log as logging_setup
from syncd.config import LdapConfig
from tests.ldap.slapd import SERVICE_DN, SERVICE_PASSWORD, SUFFIX, Slapd, make_tls_material

BASE_LDIF = Path(__file__).resolve().parent.parent / "tests" / "ldap" / "fixtures" / "base.ldif"
DEPARTMENTS_DN = f"ou=departments,{SUFFIX}"
# LDAP attribute ← synthetic export column (the default people mapping of syncd.config).
PERSON_ATTRIBUTES = (("employeeNumber", "工号"), ("cn", "姓名"), ("mobile", "手机号"), ("departmentNumber", "部门编号"),
                     ("title", "职务"), ("telephoneNumber", "办公电话"), ("employeeType", "人员状态"))


def _line(attribute: str, value: str) -> str:
    # LDIF wants base64 for a value that starts with a space, ':' or '<', or ends with a space.
    if value[:1] in (" ", ":", "<") or value.endswith(" ") or "\n" in value:
        return f"{attribute}:: {base64.b64encode(value.encode()).decode()}"
    return f"{attribute}: {value}"


def department_dns(departments: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """HR department id → DN, each department under its parent's entry."""
    parents = {row["部门编号"]: row["上级部门编号"] for row in departments}
    dns: dict[str, str] = {}

    def dn(dept_id: str) -> str:
        if dept_id not in dns:
            parent = parents[dept_id]
            dns[dept_id] = f"ou={dept_id}," + (dn(parent) if parent else DEPARTMENTS_DN)
        return dns[dept_id]

    for dept_id in parents:
        dn(dept_id)
    return dns


def ldif_entries(departments: Sequence[Mapping[str, str]], people: Iterable[Mapping[str, str]]) -> Iterator[str]:
    """LDIF text of every department, then every person, one entry at a time."""
    dns = department_dns(departments)
    for row in departments:
        lines = [f"dn: {dns[row['部门编号']]}", "objectClass: organizationalUnit", _line("ou", row["部门编号"]),
                 _line("description", row["部门名称"])]
        if row["简称"]:
            lines.append(_line("businessCategory", row["简称"]))
        yield "\n".join(lines) + "\n\n"
    for row in people:
        lines = [f"dn: uid={row['工号']},{dns[row['部门编号']]}", "objectClass: inetOrgPerson",
                 f"uid: {row['工号']}", _line("sn", row["姓名"][:1])]
        lines += [_line(attribute, row[column]) for attribute, column in PERSON_ATTRIBUTES if row[column]]
        yield "\n".join(lines) + "\n\n"


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a running process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(people: int, page_size: int, seed: int, department_from: str, ldaps: bool) -> dict[str, object]:
    """Seed, start, read, stop; the figures as a dict."""
    with tempfile.TemporaryDirectory(prefix="syncd-bench-ldap-") as tmp:
        directory = Path(tmp)
        tls = make_tls_material(directory / "tls") if ldaps else None
        server = Slapd(directory / "slapd", tls)
        started = time.monotonic()
        departments, rows = generate_lazily(people, seed)
        ldif = directory / "seed.ldif"
        with ldif.open("w", encoding="utf-8") as handle:
            handle.write(BASE_LDIF.read_text(encoding="utf-8") + "\n\n")
            handle.writelines(ldif_entries(departments, rows))
        generated = time.monotonic() - started
        started = time.monotonic()
        server.load_file(ldif)
        loaded = time.monotonic() - started
        password = directory / "password"
        password.write_text(SERVICE_PASSWORD, encoding="utf-8")
        config = LdapConfig(
            url=server.ldaps_url if ldaps else server.url, allow_plaintext=not ldaps,
            ca_file=tls.ca_file if tls else None, bind_dn=SERVICE_DN, password_file=password,
            people_base=DEPARTMENTS_DN, departments_base=f"ou=D0001,{DEPARTMENTS_DN}", page_size=page_size,
            timeout=60, department_from=department_from,  # type: ignore[arg-type]
        )
        with server:
            server.start()
            assert server.pid is not None
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            cpu_before, server_cpu_before = _self_cpu(), _cpu_seconds(server.pid)
            started = time.monotonic()
            source = LdapSource(config)
            department_count = sum(1 for _ in source.departments())
            read_people = 0
            for _record in source.people():
                read_people += 1
            elapsed = time.monotonic() - started
            client_cpu, server_cpu = _self_cpu() - cpu_before, _cpu_seconds(server.pid) - server_cpu_before
    if read_people != people:
        raise SystemExit(f"read {read_people} people, expected {people}")
    entries = department_count + read_people
    return {
        "people": read_people, "departments": department_count, "page_size": page_size,
        "department_from": department_from, "transport": "ldaps" if ldaps else "ldap",
        "read_s": round(elapsed, 2), "entries_per_s": round(entries / elapsed),
        # CPU seconds do not depend on what else the machine runs; wall time does.
        "client_cpu_s": round(client_cpu, 2), "entries_per_client_cpu_s": round(entries / client_cpu),
        "slapd_cpu_s": round(server_cpu, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_before_read_mb": round(rss_before / 1024, 1),
        "generate_s": round(generated, 2), "slapadd_s": round(loaded, 2),
        "cpus": os.cpu_count(), "python": platform.python_version(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run the benchmark once and print its figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.ldap_read", description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000, help="person entries to seed (default 100000)")
    parser.add_argument("--page-size", type=int, default=500, help="simple paged results page size (default 500)")
    parser.add_argument("--seed", type=int, default=0, help="synthetic data seed (default 0)")
    parser.add_argument("--department-from", choices=("attribute", "dn"), default="attribute")
    parser.add_argument("--ldaps", action="store_true", help="read over ldaps:// with CA verification")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)
    logging_setup.configure("console", "warning")  # per-page debug lines would be timed too
    figures = run(args.people, args.page_size, args.seed, args.department_from, args.ldaps)
    if args.json:
        print(json.dumps(figures, ensure_ascii=False))
    else:
        width = max(map(len, figures))
        for key, value in figures.items():
            print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
