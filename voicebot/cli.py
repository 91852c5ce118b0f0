"""The ``voicebot`` command: ``serve`` runs the server, ``bench`` measures reply latency, ``replay``
runs a recorded session again."""

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
    from voicebot.logs import configure_logging
    from voicebot.providers.registry import check_keys
    from voicebot.server.app import create_app
    from voicebot.server.serving import serve

    settings = _settings(args)
    check_keys(settings)  # a missing API key stops start-up at once, before any model loads
    configure_logging(settings.logging)
    workers = f" with {args.workers} workers" if args.workers > 1 else ""
    print(f"voicebot: serving on http://{settings.server.host}:{settings.server.port}{workers}", file=sys.stderr)
    if args.workers > 1:
        from voicebot.server.workers import serve_workers

        return serve_workers(settings, args.workers)
    asyncio.run(serve(create_app(settings), settings))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from voicebot.bench.run import BenchOptions, run_bench

    options = BenchOptions(
        utterances=args.utterances,
        wav=args.wav,
        testset=args.testset,
        sessions=args.sessions,
        rounds=args.rounds,
        naive=not args.no_naive,
        long=not args.no_long,
        hands_free=args.hands_free,
        json=args.json,
    )
    return run_bench(_settings(args), args.config, options)


def _replay(args: argparse.Namespace) -> int:
    from voicebot.logs import configure_logging
    from voicebot.recording.replay import run_replay

    settings = load_settings(args.config)
    # Replay's own report goes to stdout; the sessions it runs log only warnings, to stderr.
    configure_logging(settings.logging.model_copy(update={"level": "warning"}))
    return run_replay(
        settings,
        args.session,
        json_output=args.json,
        messages=args.messages,
        html=args.html,
        recorded_tools=args.recorded_tools,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicebot", description="A self-hosted real-time voice assistant.")
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--config", type=Path, default=None, help="settings file (default: settings.yaml)")
        sub.add_argument("--host", default=None, help="address to listen on (default from settings)")
        sub.add_argument("--port", type=int, default=None, help="port to listen on (default from settings)")

    serve = commands.add_parser("serve", help="run the server")
    common(serve)
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes, each with its own copy of the models (default 1; see README, Scaling)",
    )
    serve.set_defaults(func=_serve)

    bench = commands.add_parser("bench", help="measure release-to-first-audio, streaming vs. naive")
    common(bench)
    bench.add_argument("--utterances", type=int, default=5, help="different built-in questions to ask")
    bench.add_argument("--wav", type=Path, default=None, help="a folder of 16 kHz WAV files (.txt beside each) to say")
    bench.add_argument("--testset", action="store_true", help="say the generated test set (64 utterances, 8 voices)")
    bench.add_argument("--sessions", type=int, default=1, help="also measure this many sessions talking at once")
    bench.add_argument("--rounds", type=int, default=1, help="times to say each utterance per mode")
    bench.add_argument("--no-naive", action="store_true", help="skip the naive (non-streaming) server")
    bench.add_argument("--no-long", action="store_true", help="skip the long-reply requests")
    bench.add_argument("--hands-free", action="store_true", help="measure the hands-free mode instead")
    bench.add_argument("--json", action="store_true", help="print the results as JSON")
    bench.set_defaults(func=_bench)

    replay = commands.add_parser(
        "replay",
        help="run a recorded session again with the configured providers and compare",
        description="Feed each recorded turn's audio through the pipeline with the providers configured now and "
        "print transcript, reply and stage timings then and now. Exit code 1 when the recording is missing "
        "or damaged.",
    )
    replay.add_argument("session", help="a session id (looked up in recording.directory) or a recording folder")
    replay.add_argument("--config", type=Path, default=None, help="settings file (default: settings.yaml)")
    replay.add_argument("--json", action="store_true", help="print the comparison as JSON")
    replay.add_argument(
        "--messages",
        action="store_true",
        help="re-send the recorded client messages (actions, audio, barge-ins with their timing) to a fresh session",
    )
    replay.add_argument("--html", type=Path, default=None, metavar="OUT.html", help="also write the timeline page")
    replay.add_argument(
        "--recorded-tools",
        action="store_true",
        help="answer tool calls with the results recorded then instead of running the tools again (deterministic)",
    )
    replay.set_defaults(func=_replay)
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
