"""What provider webhooks keep of a person: erased (config.core.privacy); nothing exported.

Every webhook request is stored as received (integrations.webhooks) so it can be replayed
and audited. A request that mentions the person loses its body entirely and has the
mentions redacted in its query, headers, pending actions and error: a body is bytes in the
provider's own encoding (JSON, a form, a signed MIME message), where a redacted copy would be
neither the provider's words nor parseable, so blanking it is the honest choice. The
request's row stays (when, from which integration, with what outcome). The export leaves
webhooks out: they are the providers' reports, and the deliveries they updated are in it.
"""

# The SQL below interpolates only table names of this app; every value is a parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Mapping

from config.core.privacy import REDACTED, Person, privacy_register, run_update
from integrations.models import WebhookRequest


def integrations_erase(person: Person) -> Mapping[str, int]:
    pattern = person.pattern()
    # encode(…, 'escape') reads the body's bytes as text whatever their encoding: ASCII as
    # itself, anything else as octal escapes.
    return {
        "integrations_webhookrequest": run_update(
            f"""UPDATE {WebhookRequest._meta.db_table}
                   SET body = ''::bytea,
                       query = herald_redact(query, %s), headers = herald_redact(headers, %s),
                       pending = herald_redact(pending, %s),
                       path = regexp_replace(path, %s, %s, 'gi'),
                       error = regexp_replace(error, %s, %s, 'gi')
                 WHERE encode(body, 'escape') ~* %s OR query::text ~* %s
                    OR headers::text ~* %s OR pending::text ~* %s OR path ~* %s
                    OR error ~* %s""",
            [pattern, pattern, pattern, pattern, REDACTED, pattern, REDACTED, *[pattern] * 6],
        ),
    }


def register() -> None:
    privacy_register(app="integrations", eraser=integrations_erase, exporter=lambda _id: {})
