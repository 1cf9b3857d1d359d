


class MigrationFailed(RuntimeError):
    """The state database could not be brought to this release's schema; it was left as it was."""


class StateTooNew(MigrationFailed):
    """The state database was written by a newer release: its revision is unknown to this one."""


class StateUnavailable(RuntimeError):
    """The state database could not be opened; nothing was read or changed.

    `refused` tells a configuration fault (the server refused the credentials: fix, do not retry)
    from a database out of reach (retrying may succeed)."""

    def __init__(self, message: str, refused: bool) -> None:
        super().__init__(message)
        self.refused = refused
