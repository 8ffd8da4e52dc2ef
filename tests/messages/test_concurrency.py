"""Several sending tasks on one request (as send_request_enqueue starts for large requests)
share the work through their claims: every recipient gets exactly one message."""

import threading
from collections import Counter

import pytest
from django.db import connection

from campaigns.delivery import policy
from campaigns.delivery.engine import send_request_process
from campaigns.models import Delivery


@pytest.mark.django_db(transaction=True)
def test_parallel_runs_of_one_request_send_each_message_once(
    api, full_key, email_template, mail_to_sink, monkeypatch
):
    monkeypatch.setattr(policy, "BATCH_SIZE", 7)
    _purge_queue()  # leftovers of an interrupted earlier run
    recipients = [{"locator": f"c{n}@example.com", "jsonParam": "{}"} for n in range(120)]
    answer = api.post(
        f"/api/v1/message/{email_template.pk}/smartsend",
        key=full_key,
        body={"recipients": recipients},
    ).json()
    # The API enqueued the sending on commit, split over parallel tasks; no worker runs in
    # this test, so take them off the broker (and count them) and run the work here instead.
    assert _purge_queue() == 4, "120 rows in batches of 7: SEND_TASKS_MAX tasks"
    errors = []

    def run():
        try:
            send_request_process(send_request_id=answer["id"])
        except Exception as exc:  # reported below; a thread's exception is otherwise lost
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    counts = Counter(item.rcpt_tos[0] for item in mail_to_sink.received)
    assert len(counts) == 120 and set(counts.values()) == {1}
    assert Delivery.objects.filter(send_request_id=answer["id"], status="sent").count() == 120
    assert set(
        Delivery.objects.filter(send_request_id=answer["id"]).values_list("attempts", flat=True)
    ) == {1}


def _purge_queue() -> int:
    from django.conf import settings

    from config.celery import app

    with app.connection_for_write() as conn:
        return conn.default_channel.queue_purge(settings.CELERY_TASK_DEFAULT_QUEUE) or 0
