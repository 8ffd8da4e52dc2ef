from django import forms
from django.contrib import admin, messages

from config.core.errors import FieldError
from templates.design import editor_image_check, editor_image_create, editor_image_url
from templates.errors import TemplateValidationError
from templates.languages import (
    LANGUAGE_FIELDS,
    language_normalise,
    template_language_create,
    template_language_delete,
    template_language_update,
)
from templates.models import (
    EditorImage,
    MessageTemplate,
    TemplateLanguage,
    TemplateVersion,
    TemplateVersionLanguage,
)
from templates.services import (
    template_create,
    template_prepare,
    template_publish,
    template_update,
)

EDITABLE_FIELDS = (
    "name",
    "channel",
    "subject",
    "preheader",
    "from_name",
    "from_email",
    "html",
    "text",
    "sms_text",
    "provider",
    "external_id",
    "external_key",
)


class MessageTemplateForm(forms.ModelForm):
    """Validation is the service's: the form only shows its field errors (with line and
    column) next to the fields."""

    class Meta:
        model = MessageTemplate
        fields = EDITABLE_FIELDS

    def clean(self):
        cleaned = super().clean()
        trial = MessageTemplate(**{field: cleaned.get(field) or "" for field in EDITABLE_FIELDS})
        trial.text_generated = self.instance.text_generated if self.instance.pk else False
        trial.pk = self.instance.pk  # its own external key is not taken by another
        trial.external_key = cleaned.get("external_key") or None
        try:
            template_prepare(trial, text_given=bool(cleaned.get("text")))
        except TemplateValidationError as exc:
            for error in exc.errors:
                field = error.field if error.field in self.fields else None
                self.add_error(field, str(error) if field is None else _located(error))
        return cleaned


def _located(error) -> str:
    if error.line is None:
        return error.message
    return f"Line {error.line}, column {error.column}: {error.message}"


class TemplateVersionInline(admin.TabularInline):
    model = TemplateVersion
    fields = ("number", "subject", "published_at", "published_by")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class TemplateLanguageForm(forms.ModelForm):
    """Checks a language version as the service does (content rules on a trial template;
    the code normalised, so a duplicate in another case is caught by the unique check)."""

    class Meta:
        model = TemplateLanguage
        fields = ("language_code", *LANGUAGE_FIELDS)

    def clean_language_code(self) -> str:
        return language_normalise(self.cleaned_data.get("language_code"))

    def clean(self):
        cleaned = super().clean()
        trial = MessageTemplate(
            name="language",
            channel=self.instance.template.channel if self.instance.template_id else "email",
            **{field: cleaned.get(field) or "" for field in LANGUAGE_FIELDS},
        )
        try:
            template_prepare(trial, text_given=bool(cleaned.get("text")))
        except TemplateValidationError as exc:
            for error in exc.errors:
                field = error.field if error.field in self.fields else None
                self.add_error(field, str(error) if field is None else _located(error))
        return cleaned


class TemplateLanguageInline(admin.StackedInline):
    """Language versions of the draft; saved through templates.languages."""

    model = TemplateLanguage
    form = TemplateLanguageForm
    extra = 0


class TemplateVersionLanguageInline(admin.TabularInline):
    model = TemplateVersionLanguage
    fields = ("language_code", "subject")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    form = MessageTemplateForm
    list_display = ("name", "channel", "subject", "editor", "version", "updated_at")
    list_filter = ("channel", "editor")
    search_fields = ("name", "subject", "external_id", "=external_key")
    # A block design is changed in the block editor (its save compiles the MJML).
    readonly_fields = ("version", "text_generated", "editor", "created_at", "updated_at")
    inlines = [TemplateLanguageInline, TemplateVersionInline]
    actions = ["publish"]

    def save_formset(self, request, form, formset, change) -> None:
        if formset.model is not TemplateLanguage:
            return super().save_formset(request, form, formset, change)
        template = MessageTemplate.objects.get(pk=form.instance.pk)
        # What the admin's change message reads (as BaseModelFormSet.save sets them).
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for inline_form in formset.forms:
            if not inline_form.has_changed() and not formset._should_delete_form(inline_form):
                continue
            language = inline_form.instance
            if formset._should_delete_form(inline_form):
                if language.pk:
                    template_language_delete(language=language)
                    formset.deleted_objects.append(language)
                continue
            values = {
                field: inline_form.cleaned_data.get(field) or ""
                for field in ("language_code", *LANGUAGE_FIELDS)
            }
            if language.pk:
                current = TemplateLanguage.objects.select_related("template").get(pk=language.pk)
                saved = template_language_update(language=current, **values)
                formset.changed_objects.append((saved, inline_form.changed_data))
            else:
                saved = template_language_create(template=template, **values)
                formset.new_objects.append(saved)
        return None

    def save_model(self, request, obj, form, change) -> None:
        values = {field: form.cleaned_data.get(field) or "" for field in EDITABLE_FIELDS}
        values["external_id"] = values["external_id"] or None
        values["external_key"] = values["external_key"] or None
        if change:
            saved = template_update(template=MessageTemplate.objects.get(pk=obj.pk), **values)
        else:
            saved = template_create(**values)
        obj.pk = saved.pk
        obj.refresh_from_db()

    @admin.action(description="Publish a new version")
    def publish(self, request, queryset) -> None:
        for template in queryset:
            try:
                version = template_publish(template=template, user=request.user)
            except TemplateValidationError as exc:
                self.message_user(request, f"{template}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"Published {version}.", messages.SUCCESS)


@admin.register(TemplateVersion)
class TemplateVersionAdmin(admin.ModelAdmin):
    inlines = [TemplateVersionLanguageInline]
    list_display = ("template", "number", "channel", "published_at", "published_by")
    list_filter = ("channel",)
    search_fields = ("template__name", "subject")
    readonly_fields = [field.name for field in TemplateVersion._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class EditorImageForm(forms.ModelForm):
    """Type and size are the service's rules (templates.design.editor_image_create)."""

    class Meta:
        model = EditorImage
        fields = ("file",)

    def clean_file(self):
        upload = self.cleaned_data["file"]
        try:
            editor_image_check(upload=upload)
        except FieldError as exc:
            raise forms.ValidationError(exc.message) from None
        return upload


@admin.register(EditorImage)
class EditorImageAdmin(admin.ModelAdmin):
    form = EditorImageForm
    list_display = ("name", "content_type", "size", "uploaded_by", "created_at")
    list_filter = ("content_type",)
    search_fields = ("name",)
    readonly_fields = ("public_url", "name", "content_type", "size", "uploaded_by", "created_at")

    @admin.display(description="Public URL")
    def public_url(self, obj: EditorImage) -> str:
        return editor_image_url(obj) if obj.pk else ""

    def get_fields(self, request, obj=None):
        return ("file",) if obj is None else self.readonly_fields

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None

    def save_model(self, request, obj, form, change) -> None:
        image = editor_image_create(upload=form.cleaned_data["file"], user=request.user)
        obj.pk = image.pk
        obj.refresh_from_db()
