"""Settings of the webhook benchmark's server: the benchmark settings with its own URLconf."""

from tests.benchmarks.settings import *  # noqa: F403

ROOT_URLCONF = "tests.benchmarks.webhooks_urls"
