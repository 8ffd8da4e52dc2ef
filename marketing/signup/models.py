"""A subscription form, what each submission consented to, and the form's daily counters."""

from auditlog.registry import auditlog
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils.translation import gettext_lazy as _

# The form's key travels as the subscribe call's `formType` (at most 50 characters there) and
# names the event `subscribeFromApi-<key>`.
KEY_MAX = 50
# Field keys of a form's `fields`: a contact column, or `field:<custom field id>`.
BUILTIN_FIELDS = ("email", "phone", "first_name", "last_name")
CUSTOM_PREFIX = "field:"


class FormLanguage(models.TextChoices):
    EN = "en", "English"
    UK = "uk", "Українська"
    RU = "ru", "Русский"


class SignupForm(models.Model):
    name = models.CharField(_("name"), max_length=200)
    key = models.SlugField(_("key"), max_length=KEY_MAX, unique=True)
    # [{"key": "email" | "phone" | "first_name" | "last_name" | "field:<id>", "label": str,
    #   "required": bool}], in the order shown. Email is always there (services check it).
    fields = models.JSONField(default=list)
    consent_enabled = models.BooleanField(_("ask for consent"), default=False)
    consent_text = models.TextField(_("consent text"), blank=True)
    groups = models.ManyToManyField(
        "contacts.Segment", blank=True, related_name="signup_forms", verbose_name=_("groups")
    )
    tags = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    double_optin = models.BooleanField(_("double opt-in"), default=True)
    thank_you_message = models.TextField(_("thank-you message"), blank=True)
    redirect_url = models.URLField(_("redirect URL"), max_length=500, blank=True)
    language = models.CharField(
        _("language"), max_length=5, choices=FormLanguage.choices, default=FormLanguage.EN
    )
    accent_color = models.CharField(_("accent colour"), max_length=7, default="#1d4ed8")
    button_text = models.CharField(_("button text"), max_length=60, blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        verbose_name = _("subscription form")

    def __str__(self) -> str:
        return f"{self.name} ({self.key})"


class SignupSubmission(models.Model):
    """One accepted submission and its consent record: the exact text shown, when, from where."""

    # A consent record outlives its form: deleting the form keeps what people agreed to.
    form = models.ForeignKey(
        SignupForm, null=True, on_delete=models.SET_NULL, related_name="submissions"
    )
    contact = models.ForeignKey(
        "contacts.Contact",
        null=True,
        on_delete=models.SET_NULL,
        related_name="signup_submissions",
    )
    created_contact = models.BooleanField()
    consent_text = models.TextField(blank=True)
    consented_at = models.DateTimeField(null=True)
    ip = models.GenericIPAddressField(null=True)
    user_agent = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        # The statistics page counts a form's submissions per day.
        indexes = [models.Index(fields=["form", "created_at"], name="signup_submission_form_day")]

    def __str__(self) -> str:
        return f"{self.form_id} {self.created_at:%Y-%m-%d %H:%M}"


class SignupDailyStat(models.Model):
    """A form's counters for one day, each bumped by one UPSERT (never a read-modify-write)."""

    form = models.ForeignKey(SignupForm, on_delete=models.CASCADE, related_name="daily_stats")
    day = models.DateField()
    views = models.PositiveIntegerField(default=0)
    submissions = models.PositiveIntegerField(default=0)
    new_contacts = models.PositiveIntegerField(default=0)
    updated_contacts = models.PositiveIntegerField(default=0)
    spam = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["form", "day"], name="signup_daily_stat_form_day")
        ]

    def __str__(self) -> str:
        return f"{self.form_id} {self.day}"


class SignupRateWindow(models.Model):
    """Submissions from one address to one form in one fixed window (the per-IP rate limit).
    Kept in PostgreSQL: the cache is per process, and every web process must see one count."""

    form = models.ForeignKey(SignupForm, on_delete=models.CASCADE, related_name="+")
    ip = models.GenericIPAddressField()
    window_start = models.DateTimeField()
    hits = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["form", "ip", "window_start"], name="signup_rate_window_unique"
            )
        ]
        # Old windows are swept by age.
        indexes = [models.Index(fields=["window_start"], name="signup_rate_window_start")]

    def __str__(self) -> str:
        return f"{self.form_id} {self.ip} {self.window_start:%H:%M}"


auditlog.register(SignupForm, exclude_fields=["updated_at"], m2m_fields={"groups"})
