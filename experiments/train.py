"""Command line: python -m experiments.train --preset NAME [--env ID] [--seeds N] ...

Any field of `Config` can be overridden (`--learning-rate 1e-4`, `--double-q`); `--help`
lists the presets and documents every field with the chosen preset's values as defaults.
"""

import argparse
import sys
from collections.abc import Sequence

import tyro

from experiments.config import Config, ConfigError
from experiments.presets import DEFAULT_PRESET, PRESETS, get_preset


def _description() -> str:
    lines = ["Train value-based agents on envpool, many seeds in one program.", "", "Presets:"]
    lines += [f"  {name}: {preset.description}" for name, preset in PRESETS.items()]
    lines += ["", f"Pick one with --preset NAME (default {DEFAULT_PRESET}), then override fields."]
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> tuple[str, Config]:
    """(preset name, config) from command-line arguments; raises ConfigError on bad input."""
    preset_parser = argparse.ArgumentParser(add_help=False)
    preset_parser.add_argument("--preset", default=DEFAULT_PRESET)
    known, rest = preset_parser.parse_known_args(list(argv))
    base = get_preset(known.preset)
    config = tyro.cli(
        Config,
        default=base,
        args=rest,
        prog="python -m experiments.train [--preset NAME]",
        description=_description(),
    )
    return known.preset, config


def main(argv: Sequence[str] | None = None) -> int:
    from experiments.runner import NonFiniteLossError, train

    try:
        preset, config = parse_args(sys.argv[1:] if argv is None else argv)
        train(config, preset)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except NonFiniteLossError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
