"""Benchmark the Article 9 figures of a year at a large unit: `syncd.domain.compliance.compliance` over the journal.

    python -m bench.compliance --changes 100000 --batches 50

A year's journal of N personnel changes in SQLite, detected in `--batches` batches spread over the
year (a first load is one batch of everyone), each done one to six days later, with a tenth of them
retried once (a failed entry, then the done one). Reports the CPU time of the figures (what
`GET /api/v1/compliance` and `syncd report compliance` count; `/metrics` counts them at most every
five minutes).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from syncd.domain.compliance import Rules, compliance
from syncd.state.models import JournalEntry, Run
from syncd.state.store import StateStore


def build(store: StateStore, changes: int, batches: int) -> None:
    """The journal, written in bulk (the store's own calls would take longer than what is measured)."""
    start = datetime(2026, 1, 5, 2, tzinfo=UTC)
    rows = []
    with store.engine.begin() as connection:
        for batch in range(batches):
            detected = start + timedelta(days=batch * 350 // batches)
            run_id = f"run{batch:04d}"
            connection.execute(insert(Run), [{"id": run_id, "trigger": "schedule", "mode": "incremental",
                                              "dry_run": False, "scope": "all", "started_at": detected,
                                              "finished_at": detected, "outcome": "success", "counts": {}}])
            for number in range(batch, changes, batches):
                done = detected + timedelta(days=1 + number % 6)
                entry = {"run_id": run_id, "seq": number, "kind": "join" if number % 3 else "update",
                         "subject": f"P{number:07d}", "change": {}, "attempts": 1, "detected_at": detected,
                         "due_at": detected.date(), "updated_at": done}
                if number % 10 == 0:
                    rows.append({**entry, "state": "failed", "updated_at": detected})
                rows.append({**entry, "state": "done"})
            if len(rows) > 20000 or batch == batches - 1:
                connection.execute(insert(JournalEntry), rows)
                rows = []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=100000)
    parser.add_argument("--batches", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = StateStore(f"sqlite:///{Path(tmp) / 'state.db'}")
        build(store, args.changes, args.batches)
        started = time.process_time()
        result = compliance(store, "bench", date(2026, 1, 1), date(2026, 12, 31), date(2026, 12, 31), Rules(), None)
        cpu = time.process_time() - started
        store.close()
    figures = result.figures
    print(f"changes {figures.changes}  on time {figures.on_time}  median {figures.median_workdays}  "
          f"max {figures.max_workdays}  cpu {cpu:.2f} s")


if __name__ == "__main__":
    main()
