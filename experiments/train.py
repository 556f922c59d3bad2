"""Command line: python -m experiments.train --preset NAME [--env ID] [--seeds N] ...

Any field of `Config` can be overridden (`--learning-rate 1e-4`, `--double-q`); `--help`
lists the presets and documents every field with the chosen preset's values as defaults.
"""

import argparse
import sys
from collections.abc import Sequence

import tyro

from experiments.config import Config, ConfigError
from experiments.families import FAMILIES
from experiments.presets import DEFAULT_PRESET, PRESETS, get_preset


def _description() -> str:
    lines = ["Train value-based agents on envpool, many seeds in one program.", "", "Presets:"]
    lines += [f"  {name}: {preset.description}" for name, preset in PRESETS.items()]
    lines += ["", "Agents (--agent NAME), with the fields only some agents read:"]
    for name, family in FAMILIES.items():
        fields = ", ".join("--" + field.replace("_", "-") for field in family.fields)
        lines += [f"  {name} ({family.label}): {family.summary}. Reads {fields}."]
    lines += ["", f"Pick one with --preset NAME (default {DEFAULT_PRESET}), then override fields."]
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> tuple[str, Config]:
    """(preset name, config) from command-line arguments; raises ConfigError on bad input."""
    preset_parser = argparse.ArgumentParser(add_help=False)
    preset_parser.add_argument("--preset", default=DEFAULT_PRESET)
    preset_parser.add_argument("--env", default=None)
    known, _ = preset_parser.parse_known_args(list(argv))
    # The preset is built for the task first (per-task settings), then every flag applies.
    base = get_preset(known.preset, known.env)
    rest = _without_preset(list(argv))
    config = tyro.cli(
        Config,
        default=base,
        args=rest,
        prog="python -m experiments.train [--preset NAME]",
        description=_description(),
    )
    return known.preset, config


def _without_preset(argv: list[str]) -> list[str]:
    """The arguments with --preset NAME (or --preset=NAME) removed, for tyro."""
    rest, skip = [], False
    for index, argument in enumerate(argv):
        if skip:
            skip = False
        elif argument == "--preset":
            skip = index + 1 < len(argv)
        elif not argument.startswith("--preset="):
            rest.append(argument)
    return rest


def main(argv: Sequence[str] | None = None) -> int:
    from experiments.checkpoint import CheckpointSaveError
    from experiments.distributed import train_distributed
    from experiments.runner import NonFiniteLossError, train

    try:
        preset, config = parse_args(sys.argv[1:] if argv is None else argv)
        if config.distributed:
            train_distributed(config, preset)
        else:
            train(config, preset)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (NonFiniteLossError, CheckpointSaveError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
