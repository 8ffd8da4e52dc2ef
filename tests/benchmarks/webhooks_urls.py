"""The webhook benchmark's routes: Herald's, plus `/bench/noop-webhook`, a POST endpoint that
reads the body and answers 200 (what any receiver of a service's webhook must at least do),
and the `bench-sendgrid` provider kind: SendGrid's tracking webhook exactly as the email
services' providers handle it (integrations.providers.esp_webhooks), registered here so the
benchmark does not depend on which provider module defines the SendGrid kind."""

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from campaigns.delivery.feedback import WebhookResult
from campaigns.delivery.providers import Provider, SettingField, WebhookCall, provider_register
from integrations.providers.esp_webhooks import esp_webhook_authenticate, esp_webhook_parse
from tests.benchmarks.urls import handler404, handler500
from tests.benchmarks.urls import urlpatterns as bench_urlpatterns

__all__ = ["handler404", "handler500", "urlpatterns"]

KIND = "bench-sendgrid"


@provider_register
class BenchSendGrid(Provider):
    kind = KIND
    label = "SendGrid (benchmark)"
    channels = frozenset({"email"})
    fields = (SettingField("webhook_secret", "Webhook basic auth", secret=True),)

    def webhook_authenticate(self, call: WebhookCall) -> None:
        esp_webhook_authenticate("sendgrid", self, call)

    def webhook_parse(self, call: WebhookCall) -> WebhookResult:
        return esp_webhook_parse("sendgrid", self, call)


@csrf_exempt
def noop_webhook(request):
    request.read()
    return HttpResponse(status=200)


urlpatterns = [path("bench/noop-webhook", noop_webhook), *bench_urlpatterns]
