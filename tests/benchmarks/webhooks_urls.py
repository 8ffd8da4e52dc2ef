"""The webhook benchmark's routes: Herald's, plus `/bench/noop-webhook`, a POST endpoint that
reads the body and answers 200 (what any receiver of a service's webhook must at least do),
and two provider kinds, `bench-postmark` and `bench-sendgrid`: those services' tracking
webhooks exactly as the email services' providers handle them
(integrations.providers.esp_webhooks), registered here so the benchmark does not depend on
which provider module defines the Postmark and SendGrid kinds."""

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from campaigns.delivery.feedback import WebhookResult
from campaigns.delivery.providers import Provider, SettingField, WebhookCall, provider_register
from integrations.providers.esp_webhooks import esp_webhook_authenticate, esp_webhook_parse
from tests.benchmarks.urls import handler404, handler500
from tests.benchmarks.urls import urlpatterns as bench_urlpatterns

__all__ = ["handler404", "handler500", "urlpatterns"]

KINDS = {"postmark": "bench-postmark", "sendgrid": "bench-sendgrid"}


def _bench_provider(esp: str) -> type[Provider]:
    class BenchProvider(Provider):
        kind = KINDS[esp]
        label = f"{esp} (benchmark)"
        channels = frozenset({"email"})
        fields = (SettingField("webhook_secret", "Webhook basic auth", secret=True),)

        def webhook_authenticate(self, call: WebhookCall) -> None:
            esp_webhook_authenticate(esp, self, call)

        def webhook_parse(self, call: WebhookCall) -> WebhookResult:
            return esp_webhook_parse(esp, self, call)

    BenchProvider.__name__ = f"Bench{esp.title()}"
    return provider_register(BenchProvider)


for _esp in KINDS:
    _bench_provider(_esp)


@csrf_exempt
def noop_webhook(request):
    request.read()
    return HttpResponse(status=200)


urlpatterns = [path("bench/noop-webhook", noop_webhook), *bench_urlpatterns]
