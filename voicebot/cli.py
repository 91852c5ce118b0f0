"""The ``voicebot`` command: ``serve`` runs the server, ``bench`` measures reply latency."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from voicebot.errors import ProviderUnavailable
from voicebot.settings import Settings, SettingsError, load_settings


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    server = settings.server.model_copy(
        update={k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    )
    return settings.model_copy(update={"server": server})


def _serve(args: argparse.Namespace) -> int:
    from voicebot.app import create_app
    from voicebot.logs import configure_logging
    from voicebot.providers.registry import check_keys
    from voicebot.server import serve

    settings = _settings(args)
    check_keys(settings)  # a missing API key stops start-up at once, before any model loads
    configure_logging(settings.logging)
    print(f"voicebot: serving on http://{settings.server.host}:{settings.server.port}", file=sys.stderr)
    asyncio.run(serve(create_app(settings), settings))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from voicebot.bench import run_bench

    return run_bench(_settings(args), args.config, utterances=args.utterances, rounds=args.rounds)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicebot", description="A self-hosted real-time voice assistant.")
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--config", type=Path, default=None, help="settings file (default: settings.yaml)")
        sub.add_argument("--host", default=None, help="address to listen on (default from settings)")
        sub.add_argument("--port", type=int, default=None, help="port to listen on (default from settings)")

    serve = commands.add_parser("serve", help="run the server")
    common(serve)
    serve.set_defaults(func=_serve)

    bench = commands.add_parser("bench", help="measure release-to-first-audio, streaming vs. naive")
    common(bench)
    bench.add_argument("--utterances", type=int, default=5, help="different questions to ask")
    bench.add_argument("--rounds", type=int, default=1, help="times to ask each question per mode")
    bench.set_defaults(func=_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        command: Callable[[argparse.Namespace], int] = args.func
        return command(args)
    except (SettingsError, ProviderUnavailable) as exc:
        print(f"voicebot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
