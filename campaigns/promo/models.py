"""Promo code pools and their codes. A code is free until it is assigned, once, to a delivery
(the sending engine, campaigns.promo.assign) or to a contact by a workflow step."""

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

# A pool's key is what templates name (`$!promo.SPRING`): a Velocity identifier.
POOL_KEY_PATTERN = r"[A-Za-z][A-Za-z0-9_]{0,49}"
CODE_MAX_LENGTH = 100


class CodeSource(models.TextChoices):
    UPLOADED = "uploaded", "Uploaded"
    GENERATED = "generated", "Generated"


class PromoPool(models.Model):
    name = models.CharField(max_length=200)
    key = models.CharField(
        max_length=50,
        unique=True,
        validators=[RegexValidator(rf"\A{POOL_KEY_PATTERN}\Z")],
        help_text="Templates show a code of this pool with $!promo.KEY.",
    )
    description = models.TextField(blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key})"


class PromoCode(models.Model):
    # No index of its own: promo_code_unique leads with it.
    pool = models.ForeignKey(
        PromoPool, on_delete=models.CASCADE, related_name="codes", db_index=False
    )
    code = models.CharField(max_length=CODE_MAX_LENGTH)
    source = models.CharField(max_length=10, choices=CodeSource.choices)
    # Who got it: a delivery (a send), or a contact through a workflow step (no delivery).
    delivery = models.ForeignKey(
        "campaigns.Delivery",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="promo_codes",
        db_index=False,
        # No database foreign key to the partitioned ledger; retention clears it.
        db_constraint=False,
    )
    contact = models.ForeignKey(
        "contacts.Contact",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="promo_codes",
        db_index=False,
    )
    # The workflow run that issued it (marketing.workflows; an id, not a key: campaigns sits
    # below marketing).
    workflow_run_id = models.BigIntegerField(null=True, blank=True)
    assigned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pool", "code"], name="promo_code_unique"),
            # One code of a pool per delivery: two workers (or a retry) cannot give a second.
            models.UniqueConstraint(
                fields=["delivery", "pool"],
                name="promo_code_delivery_unique",
                condition=Q(delivery__isnull=False),
            ),
        ]
        indexes = [
            # The free codes of a pool in id order: what assignment takes (SKIP LOCKED).
            # assigned_at is in the key so that assignment can ORDER BY it (see
            # campaigns.promo.assign.codes_assign).
            models.Index(
                fields=["pool", "assigned_at", "id"],
                name="promo_code_free",
                condition=Q(assigned_at__isnull=True),
            ),
            # The codes workflows gave contacts (no delivery), newest first: what a later
            # message shows. Small: sent codes are not in it.
            models.Index(
                fields=["contact", "pool", "-assigned_at"],
                name="promo_code_contact",
                condition=Q(contact__isnull=False, delivery__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return self.code
