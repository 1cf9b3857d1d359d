"""The console's 接入核对 page (operators): the onboarding review of `syncd onboard`, with its workbook.

Reading the whole directory takes minutes at a large unit, so the review is made on an operator's
request in a thread of its own and kept (with its workbook) until the next one; the page shows the
latest, or that one is being made. Storing what was confirmed stays `syncd onboard --accept` on the server.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from flask import current_app, flash, redirect, render_template, send_file, url_for
from flask.typing import ResponseReturnValue

from syncd.console.auth import console_requires
from syncd.console.views import ZONE_EXTENSION, console
from syncd.domain.target import TargetError
from syncd.engine.onboard import DIRECTORY_ONLY, Review
from syncd.reporting import messages
from syncd.reporting.onboard_workbook import write_review

log = structlog.get_logger(__name__)

ONBOARD_EXTENSION = "syncd.console.onboard"
LISTED = 200  # rows of each list shown on the page; the workbook has them all


@dataclass(frozen=True, slots=True)
class Made:
    """A finished review, its workbook, and when it was made."""

    review: Review
    workbook: bytes
    made_at: datetime


class OnboardReviews:
    """Makes the review on request, one at a time, and keeps the latest."""

    def __init__(self, make: Callable[[], Review], clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._make = make
        self._clock = clock
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.latest: Made | None = None
        self.failed: str | None = None  # the error category of the last attempt, when it failed

    @property
    def running(self) -> bool:
        """Whether a review is being made now."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> bool:
        """Start making a review; False when one is being made already."""
        with self._lock:
            if self.running:
                return False
            self._thread = threading.Thread(target=self._run, name="onboard-review", daemon=True)
            self._thread.start()
            return True

    def wait(self, timeout: float) -> None:
        """Wait for the review being made (tests, shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        try:
            review = self._make()
            body = io.BytesIO()
            write_review(review, body)
        except TargetError as exc:
            log.warning("console.onboard_failed", category=exc.category, error=type(exc).__name__)
            self.failed = exc.category
            return
        self.latest, self.failed = Made(review, body.getvalue(), self._clock()), None


def _reviews() -> OnboardReviews | None:
    reviews: OnboardReviews | None = current_app.extensions.get(ONBOARD_EXTENSION)
    return reviews


@console.get("/onboard")
@console_requires("operator")
def onboard() -> ResponseReturnValue:
    """接入核对: the latest review's counts, its suggestions and what only the directory holds."""
    reviews = _reviews()
    made = reviews.latest if reviews is not None else None
    lists = {}
    if made is not None:
        review = made.review
        lists = {
            "suggestions": review.suggestions(),
            "departments": [row for row in review.departments if row.kind == DIRECTORY_ONLY],
            "people": [row for row in review.people if row.kind == DIRECTORY_ONLY],
        }
    return render_template("onboard.html", active="onboard", available=reviews is not None, made=made,
                           running=reviews is not None and reviews.running, lists=lists, listed=LISTED,
                           summary=made.review.summary() if made else {},
                           failed=messages.label(messages.ERROR_CATEGORIES, reviews.failed, "")
                           if reviews is not None and reviews.failed else "")


@console.post("/onboard")
@console_requires("operator")
def onboard_start() -> ResponseReturnValue:
    """Make a new review (reads HR's latest snapshot and the whole directory; writes nothing)."""
    reviews = _reviews()
    if reviews is not None:
        started = reviews.start()
        flash(messages.ONBOARD_CONSOLE["started" if started else "running"])
        log.info("console.onboard_requested", started=started)
    return redirect(url_for("console.onboard"), code=303)


@console.get("/onboard/review.xlsx")
@console_requires("operator")
def onboard_download() -> ResponseReturnValue:
    """The latest review's workbook (the same as `syncd onboard --output`)."""
    reviews = _reviews()
    made = reviews.latest if reviews is not None else None
    if made is None:
        return redirect(url_for("console.onboard"), code=303)
    local = made.made_at.astimezone(current_app.extensions[ZONE_EXTENSION])
    name = messages.ONBOARD_CONSOLE["file"].format(when=local.strftime("%Y%m%d-%H%M"))
    return send_file(io.BytesIO(made.workbook), as_attachment=True, download_name=name,
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
