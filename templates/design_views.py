"""The block editor page of a template, and the public address of the editor's images.

The page is GrapesJS with its MJML plugin (npm, served from Herald's static files); its
script (templates/static/templates/block_editor.js) saves through Herald's API
(POST /api/herald/templates/<id>/design) and uploads images to /api/herald/images.
"""

from csp.decorators import csp_update
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from config.core.errors import FieldError
from config.core.roles import Role, has_role, role_required
from templates.design import STARTER_LAYOUTS, editor_image_url, starter_layout_mjml
from templates.errors import TemplateError
from templates.models import EditorImage, EditorKind, MessageTemplate
from templates.preview import SAMPLE_CONTACT
from templates.services import template_render

# Images the asset manager lists when it opens (the most recent ones).
RECENT_IMAGES = 100

# What the block editor needs beyond the workspace's policy, on this page only: its canvas
# (an iframe GrapesJS writes itself, under this policy) and the preview show the design's
# images from their public URLs, which may be on HERALD_BASE_URL's host rather than the one
# the marketer browses, or on the sites a marketer links images from (the social icons of
# mj-social). Scripts stay Herald's own static files: GrapesJS and grapesjs-mjml run
# without eval or inline script.
design_csp = csp_update({"img-src": ["https:", "http:"]})


@role_required(Role.VIEWER)
@design_csp
def template_design(request, pk: int):
    template = get_object_or_404(MessageTemplate, pk=pk)
    can_write = has_role(request.user, Role.MARKETER)
    starter = request.GET.get("starter", "")
    mjml, project = template.design_mjml, template.design_project or None
    if starter:
        if not can_write:
            raise PermissionDenied("Designing templates needs the marketer role.")
        try:
            mjml, project = starter_layout_mjml(key=starter), None
        except FieldError as exc:
            raise Http404(exc.message) from None
    # The saved design as sent, for the sample contact; the page's script renders it again
    # after each save.
    preview = ""
    if template.editor == EditorKind.BLOCKS and template.html:
        try:
            preview = template_render(template=template, contact=SAMPLE_CONTACT, data={}).html
        except TemplateError:
            preview = ""  # e.g. a limit met with the sample data: the editor still opens
    images = [
        {"src": editor_image_url(image), "name": image.name}
        for image in EditorImage.objects.all()[:RECENT_IMAGES]
    ]
    return render(
        request,
        "templates/template_design.html",
        {
            "template": template,
            "can_write": can_write,
            "starters": STARTER_LAYOUTS,
            # A new design, or "Start over": the starter layouts first.
            "picking": template.channel == "email"
            and not starter
            and (not mjml or "pick" in request.GET),
            "design": {"mjml": mjml, "project": project, "images": images},
            "preview": preview,
        },
    )


@require_GET
@cache_control(public=True, max_age=365 * 24 * 3600, immutable=True)
def editor_image(request, key, extension: str):
    """Public: mail clients fetch these without logging in. The key is a random UUID, so the
    address cannot be guessed from another image's."""
    image = get_object_or_404(EditorImage, key=key)
    if image.extension.lstrip(".") != extension:
        raise Http404("No such image.")
    try:
        handle = image.file.open("rb")
    except FileNotFoundError:
        raise Http404("The image file is missing.") from None
    response = FileResponse(handle, content_type=image.content_type)
    response["X-Content-Type-Options"] = "nosniff"
    return response
