"""Campaigns' URLs: the marketer pages (campaigns, the message log) and the public endpoints
reached from inside emails. The APIs are in campaigns.api.urls."""

from django.urls import path, re_path

from campaigns import public
from campaigns.promo import views as promo
from campaigns.views import abtest, campaigns, message_log, report

# Tokens are base 36, a dot and base 32 (tracking.token_make); any case is accepted.
SIGNED = r"(?P<token>[0-9A-Za-z]{1,13}\.[0-9A-Za-z]{1,32})"

pages_urlpatterns = [
    path("messages/", message_log.message_log, name="message_log"),
    path("messages/<uuid:request_id>/", message_log.message_detail, name="message_detail"),
    path(
        "templates/<int:pk>/test-send/",
        message_log.template_test_send_view,
        name="template_test_send",
    ),
    path("campaigns/", campaigns.campaign_list, name="campaigns_home"),
    path("campaigns/new/", campaigns.campaign_create, name="campaign_create"),
    path("campaigns/reach/", campaigns.audience_reach, name="campaign_audience_reach"),
    path("campaigns/recurrence/", campaigns.recurrence_preview, name="campaign_recurrence"),
    path("campaigns/<int:pk>/", campaigns.campaign_detail, name="campaign_detail"),
    path("campaigns/<int:pk>/edit/", campaigns.campaign_edit, name="campaign_edit"),
    path("campaigns/<int:pk>/progress/", campaigns.campaign_progress, name="campaign_progress"),
    path("campaigns/<int:pk>/report/", campaigns.campaign_report, name="campaign_report"),
    path(
        "campaigns/<int:pk>/report/<slug:kind>/",
        report.campaign_report_people,
        name="campaign_report_people",
    ),
    path(
        "campaigns/<int:pk>/report/<slug:kind>.csv",
        report.campaign_report_people_csv,
        name="campaign_report_people_csv",
    ),
    path("campaigns/<int:pk>/utm/", campaigns.campaign_utm_edit, name="campaign_utm"),
    path("campaigns/<int:pk>/ab-test/", abtest.campaign_ab_test, name="campaign_ab_test"),
    path(
        "campaigns/<int:pk>/ab-test/winner/", abtest.campaign_ab_winner, name="campaign_ab_winner"
    ),
    path(
        "campaigns/<int:pk>/promo-codes.csv",
        promo.campaign_promo_codes_csv,
        name="campaign_promo_codes_csv",
    ),
    path(
        "campaigns/<int:pk>/test-send/",
        campaigns.campaign_test_send_view,
        name="campaign_test_send",
    ),
    path("campaigns/<int:pk>/<slug:action>/", campaigns.campaign_action, name="campaign_action"),
    path("promo-codes/", promo.promo_list, name="promo_home"),
    path("promo-codes/<int:pk>/", promo.promo_pool, name="promo_pool"),
    path("promo-codes/<int:pk>/upload/", promo.promo_pool_upload, name="promo_pool_upload"),
    path("promo-codes/<int:pk>/generate/", promo.promo_pool_generate, name="promo_pool_generate"),
    path("promo-codes/<int:pk>/delete/", promo.promo_pool_delete_view, name="promo_pool_delete"),
]

# No login: the signed token is the credential.
public_urlpatterns = [
    re_path(rf"^t/o/{SIGNED}\.gif$", public.open_pixel, name="tracking_open"),
    re_path(rf"^t/c/{SIGNED}/?$", public.click_redirect, name="tracking_click"),
    re_path(rf"^t/h/{SIGNED}/?$", public.trap_link, name="tracking_trap"),
    re_path(rf"^u/{SIGNED}/?$", public.unsubscribe, name="unsubscribe"),
]

urlpatterns = [*pages_urlpatterns, *public_urlpatterns]
