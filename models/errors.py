"""One exception tree for the whole tool, so the CLI can turn any known failure into one clear line."""


class HashpivotError(Exception):
    """Base of every error hashpivot raises on purpose; its message is meant for a site operator."""


class ConfigError(HashpivotError):
    """A config or override value is wrong: the message names the file, key path, value and what is allowed."""


class DataError(HashpivotError):
    """Market data is missing or unusable for the requested time: the message names the series and range."""


class InfeasibleError(HashpivotError):
    """The model has no feasible allocation; `groups` names the constraint groups that together cause it."""

    def __init__(self, message: str, groups: list[str]):
        super().__init__(message)
        self.groups = groups


class SolverError(HashpivotError):
    """HiGHS stopped without a usable solution (time limit with no incumbent, numerical trouble, …), or the
    solution failed its certificate (the model and the independent checker disagree)."""


class InputError(HashpivotError, ValueError):
    """A file, command-line or argument value other than the site config is unusable (decision JSON, scenario
    CSV, output path, option value, a negative difficulty): the message names it and what is allowed. Also a
    ValueError, so code that validates numbers the usual way catches it."""


class PublishError(HashpivotError):
    """A stored decision could not be published (disk full, publish_dir unwritable, webhook down) or applied to
    the fleet; it stays in the outbox and is published by the next pass. `decision` is the (seq, document)
    the pass stored, when it got that far, so `tick` still prints what was decided."""

    def __init__(self, message: str, decision: tuple | None = None):
        super().__init__(message)
        self.decision = decision


class StoreError(HashpivotError):
    """The SQLite store cannot be opened, read or written: the message names the file and the cause."""


class ActuatorError(HashpivotError):
    """A GPU actuator's call did not take (the marketplace API refused or did not answer, a command failed):
    the message names the target and the reason, never a credential; `attempts` says how often it was sent."""

    def __init__(self, message: str, attempts: int = 1):
        super().__init__(message)
        self.attempts = attempts
