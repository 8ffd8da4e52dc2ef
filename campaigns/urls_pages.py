"""Marketer pages for campaigns (the API lives under /api/crm/marketing/)."""

from django.urls import path

from campaigns import pages

urlpatterns = [
    path("campaigns/", pages.campaign_list, name="campaigns_home"),
    path("campaigns/new/", pages.campaign_create, name="campaign_create"),
    path("campaigns/reach/", pages.audience_reach, name="campaign_audience_reach"),
    path("campaigns/recurrence/", pages.recurrence_preview, name="campaign_recurrence"),
    path("campaigns/<int:pk>/", pages.campaign_detail, name="campaign_detail"),
    path("campaigns/<int:pk>/edit/", pages.campaign_edit, name="campaign_edit"),
    path("campaigns/<int:pk>/progress/", pages.campaign_progress, name="campaign_progress"),
    path("campaigns/<int:pk>/report/", pages.campaign_report, name="campaign_report"),
    path("campaigns/<int:pk>/<slug:action>/", pages.campaign_action, name="campaign_action"),
]
