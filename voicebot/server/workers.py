"""``voicebot serve --workers N``: several Hypercorn worker processes on one listening socket.

Sessions share nothing across connections, so any worker can take any WebSocket. Each worker is a
fresh process (Hypercorn spawns them) that builds its own app and loads its own models: with the
embedded models every worker holds a full copy (see the README's "Scaling" for the memory), so more
workers pay off mostly when the heavy stages run on model servers. The settings the command resolved
(file, environment, ``--host``/``--port``) reach the workers as JSON in one environment variable, and
the workers' metrics meet in one temporary directory, so a scrape of any worker counts them all.
"""

from __future__ import annotations

import os
import tempfile

from hypercorn.run import run as hypercorn_run
from quart import Quart

from voicebot.server.metrics import MULTIPROCESS_DIR_ENV
from voicebot.server.serving import hypercorn_config
from voicebot.settings import Settings

#: The resolved settings, as JSON, for the workers. Not ``VOICEBOT_…``: those name settings keys.
SETTINGS_ENV = "_VOICEBOT_WORKER_SETTINGS"

#: What each worker evaluates to get its app (Hypercorn's ``module:expression``).
APPLICATION_PATH = "voicebot.server.workers:worker_app()"


def serve_workers(settings: Settings, workers: int) -> int:
    """Serve with ``workers`` processes until SIGINT/SIGTERM; Hypercorn's exit code."""
    config = hypercorn_config(settings)
    config.workers = workers
    config.application_path = APPLICATION_PATH
    with tempfile.TemporaryDirectory(prefix="voicebot-metrics-") as metrics_dir:
        os.environ[SETTINGS_ENV] = settings.model_dump_json()
        os.environ[MULTIPROCESS_DIR_ENV] = metrics_dir  # read by prometheus-client as each worker imports it
        return hypercorn_run(config)


def worker_app() -> Quart:
    """The app of one worker process, built from the settings its parent resolved."""
    from voicebot.logs import configure_logging
    from voicebot.server.app import create_app

    settings = Settings.model_validate_json(os.environ[SETTINGS_ENV])
    configure_logging(settings.logging)
    return create_app(settings)
