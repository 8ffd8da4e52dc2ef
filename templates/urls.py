"""Marketer pages for message templates; the API routes are in templates.api_urls."""

from django.urls import path

from templates import design_views, views, views_languages

urlpatterns = [
    path("templates/", views.template_list, name="templates_home"),
    path("templates/new/", views.template_new, name="template_new"),
    path("templates/preview/", views.template_preview_pane, name="template_preview"),
    path("templates/<int:pk>/", views.template_edit, name="template_edit"),
    path("templates/<int:pk>/publish/", views.template_publish_view, name="template_publish"),
    path("templates/<int:pk>/versions/", views.template_versions, name="template_versions"),
    path(
        "templates/<int:pk>/versions/<int:number>/",
        views.template_version_detail,
        name="template_version",
    ),
    path(
        "templates/<int:pk>/languages/",
        views_languages.template_languages,
        name="template_languages",
    ),
    path(
        "templates/<int:pk>/languages/<str:code>/",
        views_languages.template_language_edit,
        name="template_language_edit",
    ),
    path(
        "templates/<int:pk>/languages/<str:code>/delete/",
        views_languages.template_language_delete_view,
        name="template_language_delete",
    ),
    path("templates/<int:pk>/duplicate/", views.template_duplicate_view, name="template_duplicate"),
    path("templates/<int:pk>/delete/", views.template_delete_view, name="template_delete"),
    path("templates/<int:pk>/design/", design_views.template_design, name="template_design"),
    # Public (mail clients load it): an image uploaded from the block editor.
    path("images/<uuid:key>.<slug:extension>", design_views.editor_image, name="editor_image"),
]
