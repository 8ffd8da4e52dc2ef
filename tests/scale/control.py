"""What the web process and beat do to a campaign, run as a process of its own on the broker
the worker machines use (the test process's Celery app speaks to the test broker).

    python -m tests.scale.control launch CAMPAIGN_ID     # the launch button; prints the run
    python -m tests.scale.control recover RUN_ID LEASE   # beat's runs_recover, with a lease
                                                         # of LEASE seconds, until the run ends
"""

import sys
import time
from datetime import timedelta

import django


def launch(campaign_id: int) -> None:
    from campaigns.lifecycle import campaign_launch_now
    from campaigns.models import Campaign

    run = campaign_launch_now(campaign=Campaign.objects.get(pk=campaign_id))
    print(run.pk, flush=True)


def recover(run_id: int, lease: float, timeout: float = 600) -> None:
    """Beat's recovery every second, with a claim lease short enough for a test to wait for
    (HERALD_CLAIM_TIMEOUT is ten minutes): a dead machine's claims go back to the queue."""
    from campaigns import pipeline
    from campaigns.models import CampaignRun, RunStatus

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pipeline.runs_recover(older_than=timedelta(seconds=lease), stall=timedelta(seconds=lease))
        if CampaignRun.objects.filter(pk=run_id, status=RunStatus.COMPLETED).exists():
            return
        time.sleep(1)
    raise SystemExit(f"run {run_id} did not complete within {timeout}s")


if __name__ == "__main__":
    django.setup()
    command, *arguments = sys.argv[1:]
    if command == "launch":
        launch(int(arguments[0]))
    else:
        recover(int(arguments[0]), float(arguments[1]))
