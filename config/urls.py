from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import JsonResponse
from django.urls import include, path
from django.views.defaults import page_not_found, server_error
from drf_spectacular.views import SpectacularAPIView
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from campaigns.api.urls import crm_urlpatterns
from config.api_urls import herald_urlpatterns, v1_urlpatterns
from config.core.health import healthz
from config.core.schema import APIDocsView
from config.core.views import favicon, language_set
from marketing.api.urls import v2_urlpatterns

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", favicon, name="favicon"),
    path("language/", language_set, name="language_set"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", include(v1_urlpatterns)),
    path("api/v2/", include(v2_urlpatterns)),
    path("api/herald/", include(herald_urlpatterns)),
    path("api/crm/marketing/", include(crm_urlpatterns)),
    path("api/auth/token/", TokenObtainPairView.as_view(), name="jwt-obtain"),
    path("api/auth/token/refresh/", TokenRefreshView.as_view(), name="jwt-refresh"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up code as a script file (?script): the
    # Content-Security-Policy forbids inline script.
    path("api/docs/", APIDocsView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("contacts.urls")),
    path("", include("integrations.urls")),
    path("", include("templates.urls")),
    path("", include("campaigns.urls")),
    path("", include("marketing.urls")),
    path("", include("marketing.signup.urls")),
]


def handler404(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": f"No API resource at {request.path}."}, status=404)
    return page_not_found(request, exception)


def handler500(request):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Internal server error; it has been logged."}, status=500)
    return server_error(request)
