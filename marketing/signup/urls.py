"""Subscription forms: the builder under /forms/ (workspace) and the public pages under /f/."""

from django.urls import path

from marketing.signup import public, views

urlpatterns = [
    path("forms/", views.signup_list, name="signup_home"),
    path("forms/new/", views.signup_new, name="signup_new"),
    path("forms/<int:pk>/", views.signup_edit, name="signup_edit"),
    path("forms/<int:pk>/stats/", views.signup_stats, name="signup_stats"),
    path("forms/<int:pk>/delete/", views.signup_delete, name="signup_delete"),
    path("f/<slug:key>/", public.signup_page, name="signup_page"),
    path("f/<slug:key>/thanks/", public.signup_thanks, name="signup_thanks"),
    path("f/<slug:key>/frame/", public.signup_frame, name="signup_frame"),
    path("f/<slug:key>/frame/thanks/", public.signup_frame_thanks, name="signup_frame_thanks"),
    path("f/<slug:key>/embed.js", public.signup_embed_js, name="signup_embed_js"),
]
