import json
import uuid

from auditlog.registry import auditlog
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.functions import TransactionNow
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from config.core.external_keys import external_key_field


class ChannelType(models.TextChoices):
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
    MOBILEPUSH = "mobilepush", _("Mobile push")
    WEBPUSH = "webpush", _("Web push")
    TELEGRAM = "telegram", _("Telegram")
    VIBER = "viber", _("Viber")
    WHATSAPP = "whatsapp", _("WhatsApp")
    APPINBOX = "appinbox", _("App inbox")


# Channels whose address (a chat or user id) is a contact's entry of that type in
# Contact.extra_channels rather than a column: campaigns materialise them from there, and the
# provider contract prepares them by contact id.
MESSENGER_CHANNELS = frozenset(
    {ChannelType.TELEGRAM, ChannelType.VIBER, ChannelType.WHATSAPP, ChannelType.APPINBOX}
)


class ContactSource(models.TextChoices):
    """How a contact entered Herald; the eSputnik v1 API's source names."""

    SUBSCRIBE_FORM = "subscribe_form", _("Subscribe form")
    IMPORT = "import", _("Contacts import")
    API = "api", _("API")
    SINGLE_MESSAGE = "single_message", _("Single message")
    ORDERS = "orders", _("Orders integration for RFM")
    MANUAL = "manual", _("Manual entry")


class ContactQuerySet(models.QuerySet):
    def alive(self):
        return self.filter(deleted_at__isnull=True)


class Contact(models.Model):
    """A person Herald may message. Email and phone are first-class (indexed, deduped on);
    other channels (push tokens, messenger ids) live in `extra_channels`."""

    first_name = models.CharField(max_length=40, blank=True)
    last_name = models.CharField(max_length=40, blank=True)
    # Lower-cased on write; not unique: dedupeOn=externalCustomerId may keep two with one email.
    email = models.CharField(max_length=254, blank=True, db_index=True)
    # E.164 (phonenumbers), e.g. +380942583691.
    phone = models.CharField(max_length=20, blank=True, db_index=True)
    # The database defaults (db_default) serve imports, whose COPY leaves out the columns its
    # rows all hold as a new contact has them (contacts.bulk.writer.contacts_insert); the ORM
    # sets them all.
    extra_channels = models.JSONField(
        default=list,
        db_default=[],
        blank=True,
        help_text='Other channels: [{"type": "telegram", "value": "…"}]',
    )
    region = models.CharField(max_length=100, blank=True)
    town = models.CharField(max_length=100, blank=True)
    address = models.CharField(max_length=255, blank=True)
    postcode = models.CharField(max_length=20, blank=True)
    language_code = models.CharField(max_length=10, blank=True)
    time_zone = models.CharField(max_length=64, blank=True)
    # NULL, not "", when absent: the unique constraint must ignore contacts without one.
    external_customer_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    tags = ArrayField(models.CharField(max_length=100), default=list, db_default=[], blank=True)
    # {"<custom field id>": value}; typed by CustomField.type, validated on write.
    fields = models.JSONField(default=dict, blank=True)
    confirmed = models.BooleanField(
        default=True, db_default=True, help_text="False until double opt-in is confirmed."
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(
        max_length=20, choices=ContactSource.choices, default=ContactSource.API
    )
    created_at = models.DateTimeField(auto_now_add=True, db_default=TransactionNow(), db_index=True)
    updated_at = models.DateTimeField(auto_now=True, db_default=TransactionNow())
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = ContactQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["external_customer_id"],
                condition=Q(external_customer_id__isnull=False),
                name="contact_external_customer_id_unique",
            ),
        ]
        indexes = [
            GinIndex(fields=["tags"], name="contact_tags_gin"),
            # jsonb_path_ops: smaller and faster for the @> containment the filter compiles to.
            GinIndex(fields=["fields"], name="contact_fields_gin", opclasses=["jsonb_path_ops"]),
            models.Index(Upper("last_name"), name="contact_last_name_upper"),
            models.Index(
                fields=["deleted_at"], name="contact_alive", condition=Q(deleted_at__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.email or self.phone or f"Contact {self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("contact_detail", args=[self.pk])

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class CustomFieldType(models.TextChoices):
    TEXT = "text", _("Text")
    NUMBER = "number", _("Number")
    DATE = "date", _("Date")
    BOOLEAN = "boolean", _("Yes/no")
    CHOICE = "combobox", _("Choice")


class CustomField(models.Model):
    """An additional contact field. Its id is what API clients send in `fields[{id, value}]`;
    CSV imports name it `GROUP_KEY.KEY`."""

    name = models.CharField(max_length=100)
    key = models.SlugField(max_length=100, help_text="Column key in CSV imports (KEY_CUSTOMFIELD).")
    group_name = models.CharField(max_length=100, default="Personal")
    group_key = models.SlugField(
        max_length=100, default="PERSONAL", help_text="KEY_PROFILE in CSV imports."
    )
    type = models.CharField(
        max_length=10, choices=CustomFieldType.choices, default=CustomFieldType.TEXT
    )
    required = models.BooleanField(default=False)
    readonly = models.BooleanField(default=False)
    allowed_values = ArrayField(models.CharField(max_length=200), default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["group_name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["group_key", "key"], name="custom_field_key_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class SegmentKind(models.TextChoices):
    STATIC = "static", _("Static")
    DYNAMIC = "dynamic", _("Dynamic")


class Segment(models.Model):
    """A group of contacts: a static list (SegmentMembership rows) or a dynamic filter."""

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=10, choices=SegmentKind.choices, default=SegmentKind.STATIC)
    # The CRM campaigns API's filter language ({"tags": {"$in": [...]}}); compiled to SQL by
    # contacts.filters.compiler.
    filter = models.JSONField(default=dict, blank=True)
    description = models.TextField(blank=True)
    # The integrator's own id (the CRM campaigns API's audienceId "aud-spring-prospects").
    external_key = external_key_field()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # When a dynamic segment's stored members (DynamicMember) were filled in full for its
    # current filter; NULL until then (contacts.segment_members): the incremental updates
    # leave the segment alone until it is filled.
    members_filled_at = models.DateTimeField(null=True, blank=True, editable=False)
    contacts = models.ManyToManyField(Contact, through="SegmentMembership", related_name="segments")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SegmentMembership(models.Model):
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["segment", "contact"], name="segment_membership_unique"
            ),
        ]
        # The unique index serves segment → contacts; this one serves contact → segments.
        indexes = [models.Index(fields=["contact"], name="membership_contact")]

    def __str__(self) -> str:
        return f"{self.contact_id} in {self.segment_id}"


class DynamicMember(models.Model):
    """A contact a dynamic segment's filter matches, as last evaluated (contacts.segment_members).

    Kept up to date contact by contact as contacts, events and orders change; the difference
    between a contact's evaluation and these rows is what it entered or left."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    entered_at = models.DateTimeField(db_default=TransactionNow())

    class Meta:
        verbose_name = "dynamic segment member"
        constraints = [
            models.UniqueConstraint(fields=["segment", "contact"], name="dynamic_member_unique"),
        ]
        # The unique index serves segment → contacts; this one serves contact → segments.
        indexes = [models.Index(fields=["contact"], name="dynamic_member_contact")]

    def __str__(self) -> str:
        return f"{self.contact_id} in {self.segment_id}"


class SegmentRecheck(models.Model):
    """A contact whose dynamic segment memberships may have changed: the queue the segment
    members drain works off. Rows are only inserted (never upserted, so a writer never waits
    for a drain); a contact marked twice is evaluated twice, harmlessly."""

    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    marked_at = models.DateTimeField(db_default=TransactionNow())

    class Meta:
        verbose_name = "segment recheck"

    def __str__(self) -> str:
        return f"Contact {self.contact_id} marked at {self.marked_at:%Y-%m-%d %H:%M:%S}"


class SegmentChange(models.Model):
    """A contact entering or leaving a dynamic segment, recorded with the segmentEntered /
    segmentLeft event it emitted (the initial fill of a segment records none)."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="changes")
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    entered = models.BooleanField()
    at = models.DateTimeField(db_default=TransactionNow())

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["segment", "at"], name="segment_change_recent")]

    def __str__(self) -> str:
        verb = "entered" if self.entered else "left"
        return f"{self.contact_id} {verb} {self.segment_id}"


class Unsubscribed(models.Model):
    """An email address no bulk email may reach, whichever contacts carry it."""

    email = models.CharField(max_length=254, unique=True)
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "unsubscribed address"
        verbose_name_plural = "unsubscribed addresses"

    def __str__(self) -> str:
        return self.email


class SuppressionReason(models.TextChoices):
    HARD_BOUNCE = "hard_bounce", _("Hard bounce")
    SOFT_BOUNCES = "soft_bounces", _("Repeated soft bounces")
    COMPLAINT = "complaint", _("Spam complaint")
    MANUAL = "manual", _("Added by hand")


class Suppression(models.Model):
    """An address no message may reach on its channel, and why: a hard bounce, a spam
    complaint, repeated soft bounces (contacts.suppression), or a marketer's decision. Lifting
    keeps the row (who lifted it and when) for the record; an address is suppressed while it
    has a row that is not lifted."""

    channel = models.CharField(max_length=20, choices=ChannelType.choices)
    address = models.CharField(max_length=254, help_text="Email (lower case) or E.164 phone.")
    reason = models.CharField(max_length=20, choices=SuppressionReason.choices)
    detail = models.TextField(blank=True, help_text="The provider's or mail server's words.")
    source = models.CharField(max_length=100, blank=True, help_text="Where the report came from.")
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "address"],
                condition=Q(lifted_at__isnull=True),
                name="suppression_active_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.address} ({self.get_reason_display()})"


class ImportStatus(models.TextChoices):
    STARTED = "STARTED"
    IMPORTING = "IMPORTING"
    FINISHED = "FINISHED"
    ERROR = "ERROR"


class JsonText(str):
    """A JSON document already written as text (a request body as received): a JsonTextField
    stores it as it is, and PostgreSQL checks its syntax."""


class JsonTextField(models.JSONField):
    """JSON stored as PostgreSQL `json` (the text as written) instead of `jsonb`.

    For a document that is written once, read back whole and never queried inside, such as
    an import's 3000-contact request: jsonb would parse it into its binary form on the way
    in and print it again on the way out, several times the cost of json's syntax check.
    """

    def db_type(self, connection) -> str:
        return "json"

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None or hasattr(value, "as_sql"):
            return value
        if isinstance(value, JsonText):
            return str(value)
        # Plain text: Django's jsonb adapter would cast it to jsonb first.
        return json.dumps(value, cls=self.encoder)

    def from_db_value(self, value, expression, connection):
        # psycopg decodes json itself (Django only hands jsonb over as text).
        if isinstance(value, str):
            return super().from_db_value(value, expression, connection)
        return value


class ImportJob(models.Model):
    """An asynchronous import session (POST /v1/contacts, /v1/contacts/upload, page uploads)."""

    session_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(
        max_length=10, choices=[("api", "API"), ("file", "File")], default="api"
    )
    status = models.CharField(
        max_length=10, choices=ImportStatus.choices, default=ImportStatus.STARTED
    )
    description = models.TextField(blank=True)
    # The request as received (contacts and options); the worker reads it, so nothing is lost
    # if the web process dies after answering.
    payload = JsonTextField(default=dict, blank=True)
    source_url = models.URLField(max_length=2000, blank=True)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    contact_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Import {self.session_id} ({self.status})"


class ImportFailure(models.Model):
    """One row an import could not store, with why; reported, never silently dropped."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="failures")
    index = models.PositiveIntegerField(
        help_text="0-based position in the request, or CSV line number."
    )
    reason = models.TextField()
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["index"]

    def __str__(self) -> str:
        return f"#{self.index}: {self.reason}"


auditlog.register(Contact, exclude_fields=["updated_at"])
auditlog.register(CustomField)
auditlog.register(Segment, exclude_fields=["updated_at"])
auditlog.register(Unsubscribed)


class SubscribeRequest(models.Model):
    """Fingerprints of recent subscribe calls: the eSputnik v1 API answers 409 to the same request
    repeated within a minute, whichever web process receives it."""

    fingerprint = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.fingerprint
