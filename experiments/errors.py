"""The error of bad input, shared by the config, the agent registry and the launchers."""


class ConfigError(ValueError):
    """A configuration that cannot run; the message says what to change."""


def check(condition: bool, message: str) -> None:
    """Raises ConfigError(message) unless `condition` holds."""
    if not condition:
        raise ConfigError(message)
