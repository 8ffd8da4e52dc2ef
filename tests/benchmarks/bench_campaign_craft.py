"""Campaign craft: a blast of N personalised, tracked emails with a 2-variant A/B test (20 %
test share, then the winner to the rest), a unique promo code per recipient and automatic UTM
tags, against the plain blast of the same audience and template (less the code's line), both
through Herald's delivery engine into Postfix's smtp-sink, in the same run.

The clock of each runs from `campaign_launch_now` until no delivery of its run is queued.
For the A/B campaign the wait before the winner is zero: the beat task's work
(`ab_tests_due`: count the variants' figures, choose the winner, materialise the rest) is
called as soon as the test share is sent, so its cost is inside the figure. The campaign is
configured by `craft_configure`; the pool's codes are generated before the clock starts.

Needs PostgreSQL (DATABASE_URL or the embedded server) and a Redis broker (CELERY_BROKER_URL,
default redis://127.0.0.1:6379/15); smtp-sink as in bench_campaign_send. The database
herald_bench_craft is created and dropped after.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks import support
from tests.benchmarks.bench_campaign_send import (
    SMTPSinkServer,
    _settings_module,
    populate,
    sender_worker,
)

BASE_DIR = Path(__file__).resolve().parents[2]
DATABASE_NAME = "herald_bench_craft"
QUEUE = "q_bench_craft"


# The craft the measured campaign gets (all by default; `--craft ab,utm` measures a part).
CRAFTS = ("ab", "promo", "utm")


def craft_configure(campaign, *, recipients: int, crafts: tuple[str, ...] = CRAFTS) -> None:
    """Give the campaign its craft: a 2-variant A/B test (subject and sender name) on 20 %
    of the audience, winner by unique opens, chosen automatically; a unique promo code per
    recipient (`$!promo.SPRING` in a copy of the template, from a pool with a code for
    everyone); automatic UTM tags on its tracked links."""
    from campaigns import abtest
    from campaigns.models import Campaign
    from campaigns.utm import utm_input_clean

    if "promo" in crafts:
        _promo_configure(campaign, recipients=recipients)
    if "utm" in crafts:
        utm = utm_input_clean({"enabled": True}, name=campaign.name, channels=campaign.channels)
        Campaign.objects.filter(pk=campaign.pk).update(**utm)
        campaign.refresh_from_db()
    if "ab" not in crafts:
        return
    config = abtest.ab_test_clean(
        {
            "variants": [
                {"subject": "Spring sale for $!contact.firstName"},
                {"subject": "$!contact.firstName, spring prices are down", "fromName": "Team"},
            ],
            "testPercent": 20,
            "winnerMetric": "opens",
            "waitHours": 0,
            "winnerSelection": "auto",
        },
        channel="email",
    )
    abtest.ab_test_set(campaign=campaign, config=config)


def _promo_configure(campaign, *, recipients: int) -> None:
    from campaigns.models import Campaign
    from campaigns.promo.services import (
        MAX_CODES_PER_CALL,
        promo_codes_generate,
        promo_pool_create,
    )
    from templates.services import template_create, template_publish

    pool = promo_pool_create(name="Spring", key="SPRING")
    source = campaign.template
    template = template_create(
        name=f"{source.name} (with a code)",
        subject=source.subject,
        from_email=source.from_email,
        html=source.html + "<p>Your code: $!promo.SPRING</p>",
    )
    template_publish(template=template)
    left = recipients
    while left > 0:
        left -= promo_codes_generate(
            pool=pool, count=min(left, MAX_CODES_PER_CALL), length=10, prefix="SPR-"
        )
    Campaign.objects.filter(pk=campaign.pk).update(template=template)
    campaign.refresh_from_db()


def send_pass(campaign, *, ab: bool) -> dict:
    """Launch and wait until everything is sent; for an A/B campaign, choose the winner as
    soon as the test share is out."""
    from campaigns import abtest
    from campaigns.lifecycle import campaign_launch_now
    from campaigns.models import CampaignRun, Delivery

    began = time.perf_counter()
    run = campaign_launch_now(campaign=campaign)
    materialised = time.perf_counter() - began
    support.run_sent_wait(run.pk)
    test_share = time.perf_counter() - began
    decided = 0.0
    if ab:
        moment = time.perf_counter()
        abtest.ab_tests_due()
        decided = time.perf_counter() - moment
        support.run_sent_wait(run.pk)
    elapsed = time.perf_counter() - began
    while CampaignRun.objects.get(pk=run.pk).status != "completed":
        if time.perf_counter() - began > elapsed + 60:
            break
        time.sleep(0.2)
    run.refresh_from_db()
    sent = Delivery.objects.filter(run_id=run.pk, status="sent").count()
    return {
        "seconds": elapsed,
        "materialise": materialised,
        "test_share": test_share,
        "decide": decided,
        "sent": sent,
        "reach": run.reach,
        "rate": sent / elapsed,
        "status": run.status,
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="bench campaign_craft", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument(
        "--craft",
        default=",".join(CRAFTS),
        help=f"what the measured campaign gets, comma-separated from {', '.join(CRAFTS)}",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args(argv)
    crafts = tuple(part for part in args.craft.split(",") if part)
    unknown = set(crafts) - set(CRAFTS)
    if unknown:
        parser.error(f"unknown craft {', '.join(sorted(unknown))}; choose from {', '.join(CRAFTS)}")

    if support.ran_apart("tests.benchmarks.bench_campaign_craft", argv):
        return
    scratch = Path(tempfile.mkdtemp(prefix="herald-bench-craft-"))
    try:
        with SMTPSinkServer() as sink:
            environ = {
                "CELERY_BROKER_URL": os.environ.get(
                    "CELERY_BROKER_URL", "redis://127.0.0.1:6379/15"
                ),
                "HERALD_QUEUE": QUEUE,
                "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}",
                "DEBUG": "0",
                "HERALD_VAR_DIR": str(scratch / "var"),
            }
            with support.scratch_database(
                DATABASE_NAME,
                keep=args.keep,
                settings_module=_settings_module(scratch, post_office=False),
                environ=environ,
            ) as database_url:
                _run(args.recipients, crafts, database_url, sink, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run(
    count: int, crafts: tuple[str, ...], database_url: str, sink: SMTPSinkServer, scratch: Path
) -> None:
    from campaigns.models import Campaign

    plain = populate(count)
    craft = Campaign.objects.create(
        name="Spring sale (A/B)",
        channels=["email"],
        audience_filter=plain.audience_filter,
        template=plain.template,
    )
    craft_configure(craft, recipients=count, crafts=crafts)
    print(f"{count:,} recipients, smtp-sink on port {sink.port}, {os.cpu_count()} CPUs", flush=True)
    worker = sender_worker(database_url, sink, scratch / "worker.log", QUEUE)
    try:
        base = send_pass(plain, ab=False)
        crafted = send_pass(craft, ab="ab" in crafts)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    print(
        f"plain blast:   {base['sent']:,} sent of reach {base['reach']:,} in "
        f"{base['seconds']:.1f} s = {base['rate']:,.0f} msg/s (materialise "
        f"{base['materialise']:.2f} s); run {base['status']}",
        flush=True,
    )
    print(
        f"{' + '.join(crafts) or 'nothing'}: {crafted['sent']:,} sent of reach "
        f"{crafted['reach']:,} in "
        f"{crafted['seconds']:.1f} s = {crafted['rate']:,.0f} msg/s (test share materialised "
        f"{crafted['materialise']:.2f} s, sent after {crafted['test_share']:.1f} s; winner and "
        f"the rest {crafted['decide']:.2f} s); run {crafted['status']}",
        flush=True,
    )
    print(
        f"craft / plain = {crafted['rate'] / base['rate']:.2f} (target ≥ 0.8)",
        flush=True,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
