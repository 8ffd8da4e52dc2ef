"""What the engine tells the layers above it about campaign runs. The engine never imports
the campaign lifecycle; the lifecycle connects its receivers (campaigns.lifecycle).

- `run_drained(run_id)`: a running run had no queued delivery left when a sender or the
  recovery task looked. A receiver answers True when it completed the run.
- `run_failing(run_id, reason)`: the run's failures passed its campaign's error threshold;
  the sender stopped. A receiver pauses the run and its campaign.
"""

from django.dispatch import Signal

run_drained = Signal()
run_failing = Signal()


def answered(responses: list[tuple]) -> bool:
    """Whether any receiver of a signal answered True."""
    return any(response is True for _receiver, response in responses)
