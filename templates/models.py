import uuid

from auditlog.registry import auditlog
from django.conf import settings
from django.db import models

from config.core.external_keys import external_key_field
from contacts.models import ChannelType


class EditorKind(models.TextChoices):
    HTML = "html", "HTML editor"
    BLOCKS = "blocks", "Block editor"


class MessageTemplate(models.Model):
    """A message a marketer writes once and Herald personalises per recipient. Content is
    Velocity (see templates.engine); HTML is stored sanitised. Campaigns send a published
    TemplateVersion, never the editable draft."""

    name = models.CharField(max_length=200)
    channel = models.CharField(
        max_length=20, choices=ChannelType.choices, default=ChannelType.EMAIL
    )
    subject = models.CharField(max_length=500, blank=True)
    preheader = models.CharField(max_length=500, blank=True)
    from_name = models.CharField(max_length=200, blank=True)
    from_email = models.CharField(max_length=254, blank=True)
    html = models.TextField(blank=True)
    text = models.TextField(blank=True)
    text_generated = models.BooleanField(
        default=False, help_text="The text body was derived from the HTML and follows its changes."
    )
    # The message of channels other than email (SMS, push, messengers).
    sms_text = models.TextField(blank=True)
    provider = models.CharField(
        max_length=50, blank=True, help_text="Provider holding the external copy."
    )
    external_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    # The integrator's own id (the CRM campaigns API's templateId "tpl-spring-launch"); not
    # the provider's id above, which names the service's copy.
    external_key = external_key_field()
    # The integration holding the external copy (imported from it, or published to it).
    integration = models.ForeignKey(
        "core.Integration", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    version = models.PositiveIntegerField(
        default=0, help_text="Number of the latest published version."
    )
    # The block editor (templates.design): which editor the content was last designed in,
    # the MJML document compiled into `html` on save, and the editor's own project data so
    # a design reopens exactly as it was left.
    editor = models.CharField(max_length=10, choices=EditorKind.choices, default=EditorKind.HTML)
    design_mjml = models.TextField(blank=True)
    design_project = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "external_id"],
                condition=models.Q(external_id__isnull=False),
                name="template_external_id_unique",
            ),
            # An import that is interrupted and started again finds the templates it already
            # brought in: one template per (integration, external id).
            models.UniqueConstraint(
                fields=["integration", "external_id"],
                condition=models.Q(external_id__isnull=False, integration__isnull=False),
                name="template_integration_external_id_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class TemplateVersion(models.Model):
    """An immutable snapshot taken on publish: what a campaign actually sends, so editing
    the template never changes a message already scheduled."""

    CONTENT_FIELDS = (
        "channel",
        "subject",
        "preheader",
        "from_name",
        "from_email",
        "html",
        "text",
        "sms_text",
    )

    template = models.ForeignKey(MessageTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    channel = models.CharField(max_length=20, choices=ChannelType.choices)
    subject = models.CharField(max_length=500, blank=True)
    preheader = models.CharField(max_length=500, blank=True)
    from_name = models.CharField(max_length=200, blank=True)
    from_email = models.CharField(max_length=254, blank=True)
    html = models.TextField(blank=True)
    text = models.TextField(blank=True)
    sms_text = models.TextField(blank=True)
    published_at = models.DateTimeField(auto_now_add=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["template", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["template", "number"], name="template_version_number_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template} v{self.number}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ValueError("A published template version cannot be changed.")
        super().save(*args, **kwargs)


class TemplateLanguage(models.Model):
    """The draft of a template in one language. A recipient whose contact language matches
    (case-insensitively; "en-GB" falls back to "en") gets it; everyone else gets the
    template's own content. Sender, channel and name stay the template's."""

    template = models.ForeignKey(
        MessageTemplate, on_delete=models.CASCADE, related_name="languages"
    )
    # Lower case, "-" between parts (templates.languages.language_normalise).
    language_code = models.CharField(max_length=10)
    subject = models.CharField(max_length=500, blank=True)
    preheader = models.CharField(max_length=500, blank=True)
    html = models.TextField(blank=True)
    text = models.TextField(blank=True)
    text_generated = models.BooleanField(default=False)
    sms_text = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["template", "language_code"]
        constraints = [
            models.UniqueConstraint(
                fields=["template", "language_code"], name="template_language_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template} [{self.language_code}]"


class TemplateVersionLanguage(models.Model):
    """A language version frozen with its TemplateVersion on publish (immutable, like it)."""

    CONTENT_FIELDS = ("subject", "preheader", "html", "text", "sms_text")

    version = models.ForeignKey(TemplateVersion, on_delete=models.CASCADE, related_name="languages")
    language_code = models.CharField(max_length=10)
    subject = models.CharField(max_length=500, blank=True)
    preheader = models.CharField(max_length=500, blank=True)
    html = models.TextField(blank=True)
    text = models.TextField(blank=True)
    sms_text = models.TextField(blank=True)

    class Meta:
        ordering = ["version", "language_code"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "language_code"], name="template_version_language_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.version} [{self.language_code}]"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ValueError("A published language version cannot be changed.")
        super().save(*args, **kwargs)

    def as_version(self, main: TemplateVersion) -> TemplateVersion:
        """The main version with this language's content: what rendering reads. Unsaved,
        but with the main version's id, so the ledger and the senders see the version the
        row names."""
        localised = TemplateVersion(
            pk=main.pk,
            template_id=main.template_id,
            number=main.number,
            published_at=main.published_at,
            **{field: getattr(main, field) for field in TemplateVersion.CONTENT_FIELDS},
        )
        if TemplateVersion.template.is_cached(main):
            localised.template = main.template
        for field in self.CONTENT_FIELDS:
            setattr(localised, field, getattr(self, field))
        localised.language_code = self.language_code  # type: ignore[attr-defined]
        return localised


def _editor_image_path(image: "EditorImage", filename: str) -> str:
    return f"editor-images/{image.key.hex}{image.extension}"


class EditorImage(models.Model):
    """An image uploaded from the block editor. Emails are read outside Herald, so it is
    served without login at an unguessable public URL (templates.design.editor_image_url)."""

    EXTENSIONS = {
        "image/png": ".png",
        "image/jpeg": ".jpg",
        "image/gif": ".gif",
        "image/webp": ".webp",
    }

    key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    file = models.FileField(upload_to=_editor_image_path, max_length=200)
    name = models.CharField(max_length=255, help_text="The file name it was uploaded with.")
    content_type = models.CharField(max_length=50)
    size = models.PositiveIntegerField(help_text="Bytes.")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def extension(self) -> str:
        return self.EXTENSIONS.get(self.content_type, "")


# The editor's project data is large and only mirrors design_mjml: not worth an audit row.
auditlog.register(MessageTemplate, exclude_fields=["updated_at", "design_project"])
auditlog.register(TemplateVersion)
auditlog.register(TemplateLanguage, exclude_fields=["updated_at"])
