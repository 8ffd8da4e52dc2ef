"""Herald's settings with the benchmark URLconf (Herald's routes plus a no-op endpoint)."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "tests.benchmarks.urls"
