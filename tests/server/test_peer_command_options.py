"""`psc119 peer`'s weak-link options: what they make of the adaptation, and bad values refused by name."""

from __future__ import annotations

import argparse

import pytest

from server import peer_command
from signaling.bandwidth import AdaptPolicy
from signaling.errors import InvalidValue


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    peer_command.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["peer", "--consult", "c1", "--token", "t" * 20, *argv])


def test_defaults_adapt_video_within_the_policy() -> None:
    args = parse()
    options = peer_command.adapt_options(args)
    assert options.video and options.max_size is None and options.policy == AdaptPolicy()
    assert not args.relay_only


def test_options_cap_the_bitrate_and_the_picture_and_can_refuse_video() -> None:
    args = parse("--relay-only", "--max-bitrate", "40000", "--resolution", "320x240", "--audio-only", "--min-fps", "5")
    options = peer_command.adapt_options(args)
    assert args.relay_only and not options.video and options.max_size == (320, 240)
    assert (options.policy.max_bitrate, options.policy.start_bitrate, options.policy.min_bitrate) == (40_000, 40_000, 40_000)
    assert options.policy.min_fps == 5


@pytest.mark.parametrize("value", ["320", "321x240", "0x240", "320x240x2", "big"])
def test_a_resolution_must_be_even_width_x_height(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--resolution", value)
    assert "WIDTHxHEIGHT" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "field"), [(["--max-bitrate", "5000"], "max_bitrate"), (["--min-fps", "0"], "min_fps")])
def test_values_out_of_range_name_their_option(argv: list[str], field: str) -> None:
    with pytest.raises(InvalidValue) as error:
        peer_command.adapt_options(parse(*argv))
    assert error.value.field == field
