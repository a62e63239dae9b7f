"""User-facing errors: their message is shown as is in the UI and the CLI."""


class WorkbenchError(ValueError):
    """Bad input or a state the user can fix; never a bug."""


class NotFound(WorkbenchError):
    pass
