"""What events, orders, workflows and sign-up forms keep of a person: erased and exported
(config.core.privacy).

Events stay (they count in event analytics) without their keyValue and params; orders stay
(revenue, RFM) without the buyer's name, address, email, phone and customer id; workflow runs
stay (the workflow's figures) without their params; sign-up submissions keep the consent
text and time without the browser's IP address and name.

An event or an order is the person's when it is linked to the contact or keyed by one of its
identifiers (an event whose keyValue is the address, sent before any contact carried it);
events of anyone else that mention the person in their params have the mentions redacted,
which reads the whole event table: an erasure is rare, a missed copy is not acceptable.
"""

# The SQL below interpolates only table names of this app; every value is a parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Iterator, Mapping

from config.core.privacy import REDACTED, Person, privacy_register, run_update
from marketing.models import Event, Order
from marketing.signup.models import SignupSubmission
from marketing.workflows.models import WorkflowRun, WorkflowSend

# Events read per round trip while the export streams them.
EXPORT_CHUNK = 1000


def marketing_erase(person: Person) -> Mapping[str, int]:
    return {**_events_erase(person), **_orders_erase(person), **_workflows_erase(person)}


def _events_erase(person: Person) -> dict[str, int]:
    events = Event._meta.db_table
    pattern = person.pattern()
    own = run_update(
        f"""UPDATE {events} SET key_value = '', params = '{{}}'::jsonb,
                   problems = herald_redact(problems, %s)
             WHERE contact_id = %s OR key_value = ANY(%s)""",
        [person.pattern(names=True), person.contact_id, person.keys()],
    )
    mentions = run_update(
        f"""UPDATE {events} SET key_value = regexp_replace(key_value, %s, %s, 'gi'),
                   params = herald_redact(params, %s), problems = herald_redact(problems, %s)
             WHERE params::text ~* %s OR key_value ~* %s OR problems::text ~* %s""",
        [pattern, REDACTED, pattern, pattern, pattern, pattern, pattern],
    )
    return {"marketing_event": own + mentions}


def _orders_erase(person: Person) -> dict[str, int]:
    pattern = person.pattern(names=True)
    keys = person.keys()
    emails = sorted(person.emails)
    return {
        "marketing_order": run_update(
            f"""UPDATE {Order._meta.db_table}
                   SET email = '', phone = '', first_name = '', last_name = '',
                       external_customer_id = '', delivery_address = '',
                       restore_url = regexp_replace(restore_url, %s, %s, 'gi'),
                       status_description = regexp_replace(status_description, %s, %s, 'gi'),
                       additional_info = herald_redact(additional_info, %s),
                       raw = herald_redact(raw, %s)
                 WHERE contact_id = %s OR lower(email) = ANY(%s) OR phone = ANY(%s)
                    OR external_customer_id = ANY(%s)""",
            [*[pattern, REDACTED] * 2, pattern, pattern, person.contact_id, emails, keys, keys],
        ),
    }


def _workflows_erase(person: Person) -> dict[str, int]:
    pattern = person.pattern(names=True)
    runs = WorkflowRun._meta.db_table
    return {
        "marketing_workflowsend": run_update(
            f"""UPDATE {WorkflowSend._meta.db_table} SET names = herald_redact(names, %s)
                 WHERE run_id IN (SELECT id FROM {runs} WHERE contact_id = %s)
                   AND names::text ~* %s""",
            [pattern, person.contact_id, pattern],
        ),
        "marketing_workflowrun": run_update(
            f"""UPDATE {runs} SET params = '{{}}'::jsonb, path = herald_redact(path, %s),
                   error = regexp_replace(error, %s, %s, 'gi'),
                   exit_reason = regexp_replace(exit_reason, %s, %s, 'gi')
             WHERE contact_id = %s""",
            [pattern, pattern, REDACTED, pattern, REDACTED, person.contact_id],
        ),
        "marketing_signupsubmission": run_update(
            f"""UPDATE {SignupSubmission._meta.db_table} SET ip = NULL, user_agent = ''
                 WHERE contact_id = %s""",
            [person.contact_id],
        ),
    }


# --- the export -----------------------------------------------------------------------------


def marketing_export(contact_id: int) -> Mapping[str, object]:
    return {
        "events": _events(contact_id),
        "orders": _orders(contact_id),
        "workflowRuns": [
            {
                "workflow": {"id": run.workflow_id, "name": run.workflow.name},
                "status": run.status,
                "currentStep": run.current_step,
                "params": run.params,
                "path": run.path,
                "exitReason": run.exit_reason,
                "startedAt": run.started_at,
                "finishedAt": run.finished_at,
            }
            for run in WorkflowRun.objects.filter(contact_id=contact_id)
            .select_related("workflow")
            .order_by("started_at", "pk")
        ],
        "signups": [
            {
                "form": row["form__name"],
                "consentText": row["consent_text"],
                "consentedAt": row["consented_at"],
                "ip": row["ip"],
                "userAgent": row["user_agent"],
                "at": row["created_at"],
            }
            for row in SignupSubmission.objects.filter(contact_id=contact_id)
            .order_by("created_at")
            .values("form__name", "consent_text", "consented_at", "ip", "user_agent", "created_at")
        ],
    }


def _events(contact_id: int) -> Iterator[dict]:
    rows = (
        Event.objects.filter(contact_id=contact_id)
        .order_by("created_at", "pk")
        .values_list("event_type__key", "key_value", "params", "occurred_at", "created_at")
    )
    for type_key, key_value, params, occurred_at, created_at in rows.iterator(
        chunk_size=EXPORT_CHUNK
    ):
        yield {
            "eventTypeKey": type_key,
            "keyValue": key_value,
            "params": params,
            "occurredAt": occurred_at,
            "createdAt": created_at,
        }


def _orders(contact_id: int) -> list[dict]:
    orders = Order.objects.filter(contact_id=contact_id).prefetch_related("items").order_by("date")
    return [
        {
            "externalOrderId": order.external_order_id,
            "externalCustomerId": order.external_customer_id,
            "status": order.status,
            "totalCost": order.total_cost,
            "currency": order.currency,
            "date": order.date,
            "email": order.email,
            "phone": order.phone,
            "firstName": order.first_name,
            "lastName": order.last_name,
            "deliveryAddress": order.delivery_address,
            "items": [
                {
                    "externalItemId": item.external_item_id,
                    "name": item.name,
                    "quantity": item.quantity,
                    "cost": item.cost,
                }
                for item in order.items.all()
            ],
        }
        for order in orders
    ]


def register() -> None:
    privacy_register(app="marketing", eraser=marketing_erase, exporter=marketing_export)
