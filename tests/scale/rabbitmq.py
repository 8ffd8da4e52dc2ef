"""A private RabbitMQ vhost for the scale-out tests and benchmark (127.0.0.1:5672, the
machine's shared server): nothing here touches another user's queues."""

import os
import shutil
import socket
import subprocess

AMQP_HOST, AMQP_PORT = "127.0.0.1", 5672
VHOST = "herald_scale"


def rabbitmq_url() -> str | None:
    """amqp:// URL of the private vhost (made when missing); None without RabbitMQ."""
    url = os.environ.get("HERALD_TEST_AMQP_URL")
    if url:
        return url
    try:
        socket.create_connection((AMQP_HOST, AMQP_PORT), timeout=2).close()
    except OSError:
        return None
    vhost = VHOST
    if shutil.which("rabbitmqctl"):
        listed = subprocess.run(
            ["rabbitmqctl", "list_vhosts", "--quiet"], capture_output=True, text=True
        )
        if VHOST not in listed.stdout.split():
            subprocess.run(["rabbitmqctl", "add_vhost", VHOST], capture_output=True, check=True)
        subprocess.run(
            ["rabbitmqctl", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"],
            capture_output=True,
            check=True,
        )
    else:
        vhost = ""  # the default vhost, with queue names of our own
    return f"amqp://guest:guest@{AMQP_HOST}:{AMQP_PORT}/{vhost}"


def queue_delete(url: str, queue: str) -> None:
    from kombu import Connection

    with Connection(url) as connection:
        connection.default_channel.queue_delete(queue)
