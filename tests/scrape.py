"""Reading a server's ``/metrics`` back in tests, with prometheus-client's own parser."""

from __future__ import annotations

import asyncio
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample as ``{(name, sorted labels): value}``."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def fetch_text(base_url: str) -> tuple[str, str]:
    """(content type, body) of ``GET base_url/metrics``."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=10) as response:
        return response.headers["Content-Type"], response.read().decode()


async def scrape(base_url: str) -> Samples:
    """The samples of ``base_url/metrics``, fetched off the event loop (the server may run on it)."""
    _, text = await asyncio.to_thread(fetch_text, base_url)
    return parse(text)


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist (yet)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)
