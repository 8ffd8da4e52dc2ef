from django.core.management.base import BaseCommand

from marketing.demo import ensure_admin, load_demo


class Command(BaseCommand):
    help = "Load the demo data set (idempotent) and create the first admin if there is none."

    def handle(self, *args, **options):
        load_demo()
        password = ensure_admin()
        if password:
            self.stdout.write(f"Admin created: admin / {password}")
        self.stdout.write("Demo data loaded.")
