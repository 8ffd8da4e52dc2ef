"""Beat-driven lifecycle tasks: ids in, one service call. Each is idempotent — a launch or tick
for a campaign that is no longer scheduled or running does nothing."""

from celery import shared_task

from campaigns import lifecycle


@shared_task(name="campaigns.launch_scheduled")
def launch_scheduled(campaign_id: int) -> int | None:
    run = lifecycle.campaign_launch_scheduled(campaign_id=campaign_id)
    return run.pk if run else None


@shared_task(name="campaigns.launch_recurring_tick")
def launch_recurring_tick(campaign_id: int) -> int | None:
    run = lifecycle.campaign_tick(campaign_id=campaign_id)
    return run.pk if run else None


@shared_task(name="campaigns.end_due")
def end_due() -> int:
    return lifecycle.campaigns_end_due()
