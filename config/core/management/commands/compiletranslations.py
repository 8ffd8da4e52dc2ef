"""Compile the message catalogues (locale/*/LC_MESSAGES/django.po → .mo) without GNU gettext.

Django's own `compilemessages` needs `msgfmt`, which a fresh machine may not have; polib
writes the same binary catalogue. `bin/bootstrap` runs this, so the compiled files are never
committed. A catalogue that does not parse stops the command with its path.
"""

from pathlib import Path

import polib
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Compile every locale/*/LC_MESSAGES/*.po into its .mo (no gettext tools needed)."

    def handle(self, *args, **options) -> None:
        compiled = 0
        for root in settings.LOCALE_PATHS:
            for po_path in sorted(Path(root).glob("*/LC_MESSAGES/*.po")):
                mo_path = po_path.with_suffix(".mo")
                if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
                    continue
                try:
                    catalogue = polib.pofile(str(po_path))
                except (OSError, ValueError) as exc:
                    raise CommandError(f"{po_path}: {exc}") from exc
                catalogue.save_as_mofile(str(mo_path))
                compiled += 1
        self.stdout.write(f"Compiled {compiled} message catalogue(s).")
