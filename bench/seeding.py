"""What the cycle benchmarks share: a synthetic export on disk, a state database seeded as if synced, a config.

Seeding writes the links a successful sync would have left straight into the state tables, so a
benchmark of a no-change cycle does not first spend minutes creating a million people in the
simulator. The cycle measured afterwards is the real one.
"""

from __future__ import annotations

import json
import os
import resource
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.sources.csv_source import CsvSource
from syncd.config import DEFAULT_DEPARTMENT_COLUMNS, DEFAULT_PEOPLE_COLUMNS, Config
from syncd.domain.model import LinkedDepartment, LinkedPerson, LinkState, Snapshot, department_pushed_fields
from syncd.state.models import DepartmentLink, PersonLink
from syncd.state.store import StateStore

ROOT = "D0001"
_BATCH = 20_000


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """Resident memory of this process now, in MB (VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def export(directory: Path, people: int, seed: int = 1) -> Path:
    """The synthetic export of `people` people in `directory`, written unless an identical one is there."""
    marker = directory / "export.json"
    wanted = {"people": people, "seed": seed}
    if marker.exists() and json.loads(marker.read_text()) == wanted and (directory / "people.csv").exists():
        return directory
    from bench.synthetic import generate_lazily, write_csv  # Faker: only where an export is written

    departments, rows = generate_lazily(people, seed=seed)
    write_csv(directory, departments, rows)
    marker.write_text(json.dumps(wanted))
    return directory


def csv_source(directory: Path) -> CsvSource:
    """The real CSV source over the export in `directory`, default headers."""
    return CsvSource(directory / "people.csv", directory / "departments.csv", DEFAULT_PEOPLE_COLUMNS,
                     DEFAULT_DEPARTMENT_COLUMNS)


def as_synced(snapshot: Snapshot) -> LinkState:
    """The links a successful sync of this snapshot would leave."""
    state = LinkState()
    for dept in snapshot.departments.values():
        if dept.id != ROOT:
            state.departments[dept.id] = LinkedDepartment(f"GO_{dept.id}", dept.parent, department_pushed_fields(dept))
    for i, p in enumerate(snapshot.people.values()):
        if p.status.value == "在职":
            state.people[p.employee_id] = LinkedPerson(f"GE_{i:032x}", i, p.department, f"GO_{p.department}",
                                                       p.pushed_fields())
    return state


def seed_links(store: StateStore, state: LinkState) -> None:
    """Write every link of `state` into the store's tables, in batches (as if each change had been applied)."""
    now = datetime.now(UTC)
    departments = [{"hr_id": k, "organization_code": v.organization_code, "parent_hr_id": v.parent,
                    "pushed": v.pushed, "status": v.status, "updated_at": now} for k, v in state.departments.items()]
    with store.engine.begin() as connection:
        if departments:
            connection.execute(DepartmentLink.__table__.insert(), departments)
        for batch in _batches(state.people.items()):
            connection.execute(PersonLink.__table__.insert(), [
                {"employee_id": k, "employee_code": v.employee_code, "account_id": v.account_id,
                 "department": v.department, "organization_code": v.organization_code, "pushed": v.pushed,
                 "status": v.status, "frozen": v.frozen, "updated_at": now} for k, v in batch])


def _batches(items: Any) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def tenant_settings(tenant: Any) -> dict[str, Any]:
    """What a configuration needs of a simulator tenant (passed to a measured subprocess as JSON)."""
    return {"root_code": tenant.root_code, "app_key": tenant.app_key, "app_secret": tenant.app_secret,
            "tenant_id": tenant.tenant_id}


def bench_config(directory: Path, base_url: str, tenant: dict[str, Any], state_url: str, **sections: Any) -> Config:
    """A configuration for the export in `directory` against the simulator tenant (`tenant_settings`) at `base_url`."""
    raw: dict[str, Any] = {
        "unit": {"name": "bench", "root_department": ROOT, "root_organization_code": tenant["root_code"]},
        "source": {"kind": "csv", "people": str(directory / "people.csv"),
                   "departments": str(directory / "departments.csv")},
        "target": {"base_url": base_url, "app_key": tenant["app_key"], "app_secret": tenant["app_secret"],
                   "tenant_id": tenant["tenant_id"]},
        "state": {"url": state_url},
        "safety": {"structure_changes": "apply"},
    }
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values}
    return Config.model_validate(raw)


def open_fds() -> int:
    """How many file descriptors this process holds."""
    return len(os.listdir("/proc/self/fd"))
