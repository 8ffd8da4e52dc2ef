from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from campaigns.models import Campaign
from campaigns.purge import PurgeRefused, PurgeResult, campaign_purge, campaigns_purge
from config.core.external_keys import by_id_or_key


class Command(BaseCommand):
    help = (
        "Remove soft-deleted campaigns for good, with their runs and ledger rows: those "
        "deleted more than HERALD_CAMPAIGN_PURGE_AFTER_DAYS days ago, or one deleted "
        "campaign named by --campaign (whatever its age)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--campaign", metavar="ID_OR_KEY", help="Only this campaign (id or external key)."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Say what would go; remove nothing."
        )

    def handle(self, *args, campaign: str | None, dry_run: bool, **options):
        if campaign is not None:
            found = by_id_or_key(Campaign.objects.all(), campaign)
            if found is None:
                raise CommandError(f"No campaign with id or external key {campaign!r}.")
            try:
                results = [campaign_purge(campaign=found, dry_run=dry_run)]
            except PurgeRefused as exc:
                raise CommandError(exc.message) from None
        else:
            results, _ = campaigns_purge(dry_run=dry_run)
            if not results:
                days = settings.HERALD_CAMPAIGN_PURGE_AFTER_DAYS
                self.stdout.write(f"No campaign was deleted more than {days} days ago.")
        for result in results:
            self.stdout.write(self._line(result))

    @staticmethod
    def _line(result: PurgeResult) -> str:
        verb = "Would purge" if result.dry_run else "Purged"
        key = f" [{result.external_key}]" if result.external_key else ""
        return (
            f"{verb} campaign {result.campaign_id}{key} “{result.name}” (deleted "
            f"{result.deleted_at:%Y-%m-%d %H:%M}): {result.runs} runs, "
            f"{result.deliveries} deliveries."
        )
