


class MigrationFailed(RuntimeError):
    """The state database could not be brought to this release's schema; it was left as it was."""
