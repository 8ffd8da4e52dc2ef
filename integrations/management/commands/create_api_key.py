from django.core.management.base import BaseCommand, CommandError

from config.core.api_keys import api_key_create
from config.core.models import APIRight


class Command(BaseCommand):
    help = "Create an API key and print only the key (shown once; Herald stores a hash)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--rights", default=APIRight.FULL, choices=APIRight.values)

    def handle(self, *args, name: str, rights: str, **options):
        if not name.strip():
            raise CommandError("The key needs a name.")
        _, secret = api_key_create(name=name, rights=rights)
        self.stdout.write(secret)
