"""Beat-driven refresh of campaign analytics (a thin adapter over campaigns.analytics)."""

from celery import shared_task

from campaigns.analytics import stats_refresh, stats_refreshed


# Idempotent (every row is recomputed, never incremented) and serialised by an advisory lock,
# so a redelivered or overlapping run is harmless; no retry: the next tick does the same work.
@shared_task(name="campaigns.stats_refresh", acks_late=True, ignore_result=True)
def stats_refresh_task(run_ids: list[int] | None = None) -> dict:
    result = stats_refresh(run_ids=run_ids)
    # After the rollup, which may have just created the rows that apps above write into
    # (marketing's order conversions).
    stats_refreshed.send(sender=stats_refresh, run_ids=run_ids)
    return {"runs": result.runs, "stats": result.stats_rows, "buckets": result.bucket_rows}
