"""Translation: every text a template shows is marked, every catalogue entry is translated, and
the language a page or an email speaks is the one its reader chose.

The first two are checks over files, parametrised per template and per (language, source file)
so that a failure names the file, and so its owner.
"""

import re
from html.parser import HTMLParser
from pathlib import Path

import polib
import pytest
from django.apps import apps
from django.conf import settings
from django.core import mail
from django.template.base import Lexer, TokenType
from django.urls import reverse
from django.utils import translation

from config.core.i18n import org_language, organisation_language
from config.core.models import Organisation, UserPreference

BASE_DIR = Path(settings.BASE_DIR)
TEMPLATE_SUFFIXES = {".html", ".txt"}

# Words that stay as they are in every language: product and format names.
BRAND_WORDS = {
    "Herald",
    "GrapesJS",
    "MJML",
    "Velocity",
    "CSV",
    "API",
    "JSON",
    "SMTP",
    "UTM",
    "RFM",
    "HTML",
    "URL",
    "ID",
    "SMS",
    "DKIM",
}
# Attributes whose value a person reads or hears.
SPOKEN_ATTRIBUTES = {"title", "aria-label", "placeholder", "alt", "aria-description"}
BUTTON_INPUT_TYPES = {"submit", "button", "reset"}
# Elements whose content is code or a sample shown as it is.
RAW_ELEMENTS = {"script", "style", "code", "pre", "kbd", "samp"}
# Template tags whose whole block is not text shown as it is.
SKIPPED_BLOCKS = {
    "blocktranslate": "endblocktranslate",
    "blocktrans": "endblocktrans",
    "comment": "endcomment",
    "verbatim": "endverbatim",
}
# What remains once template code stood in for "0": URLs, addresses, Velocity references and
# directives ($!data.get('x'), #if(...)), then anything that is not a letter.
NOT_WORDS = [
    re.compile(r"\b[a-z][a-z0-9+.-]*://\S*"),
    re.compile(r"\S+@\S+"),
    re.compile(r"\$!?\{?[\w.]+(\([^)]*\))?\}?"),
    re.compile(r"#(if|elseif|else|end|foreach|set|break|stop|macro)\b(\([^)]*\))?"),
]
WORD = re.compile(r"[^\W\d_]{2,}")
PLACEHOLDER = "0"


def template_files() -> list[Path]:
    files: list[Path] = []
    for app in apps.get_app_configs():
        root = Path(app.path) / "templates"
        if not root.is_dir() or BASE_DIR not in root.parents:
            continue
        # Herald's own apps, not the installed packages (.venv may sit inside the checkout).
        if not any(part.startswith(".") or part == "site-packages" for part in root.parts):
            files += [p for p in root.rglob("*") if p.suffix in TEMPLATE_SUFFIXES]
    return sorted(set(files))


def skeleton(source: str) -> str:
    """The template with every piece of template code replaced by "0" (keeping its line
    breaks) and every translated or commented-out block dropped the same way."""
    parts: list[str] = []
    closing = ""
    for token in Lexer(source).tokenize():
        newlines = "\n" * token.contents.count("\n")
        if closing:
            if token.token_type == TokenType.BLOCK and token.contents.split()[0] == closing:
                closing = ""
            parts.append(newlines)
            continue
        if token.token_type == TokenType.TEXT:
            parts.append(token.contents)
            continue
        if token.token_type == TokenType.BLOCK:
            name = token.contents.split()[0] if token.contents.split() else ""
            closing = SKIPPED_BLOCKS.get(name, "")
        parts.append(f" {PLACEHOLDER} {newlines}")
    return "".join(parts)


def words_of(text: str) -> list[str]:
    for pattern in NOT_WORDS:
        text = pattern.sub(" ", text)
    return [word for word in WORD.findall(text) if word not in BRAND_WORDS]


class UnmarkedText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.raw_depth = 0
        self.found: list[tuple[int, str]] = []

    def _check(self, text: str) -> None:
        if words_of(text):
            shown = re.sub(rf"(?:\s*\b{PLACEHOLDER}\b\s*)+", " {…} ", text)
            self.found.append((self.getpos()[0], " ".join(shown.split())))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name, value in attrs:
            if value and name in SPOKEN_ATTRIBUTES:
                self._check(value)
        if tag == "input" and values.get("type") in BUTTON_INPUT_TYPES and values.get("value"):
            self._check(values["value"] or "")
        if tag in RAW_ELEMENTS:
            self.raw_depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in RAW_ELEMENTS and self.raw_depth:
            self.raw_depth -= 1

    def handle_data(self, data: str) -> None:
        if not self.raw_depth:
            self._check(data)


def unmarked_text(path: Path, root: Path = BASE_DIR) -> list[str]:
    """file:line: text of every unmarked text of the template at `path`."""
    parser = UnmarkedText()
    parser.feed(skeleton(path.read_text()))
    parser.close()
    return [f"{path.relative_to(root)}:{line}: {text}" for line, text in parser.found]


@pytest.mark.parametrize("path", template_files(), ids=lambda path: str(path.relative_to(BASE_DIR)))
def test_every_text_of_the_template_is_marked_for_translation(path):
    problems = unmarked_text(path)
    assert not problems, "Text not marked for translation:\n" + "\n".join(problems)


def test_the_unmarked_text_check_finds_text_and_spares_code(tmp_path):
    template = tmp_path / "page.html"
    template.write_text(
        "{% load i18n %}<h1>{% translate 'Contacts' %}</h1>\n"
        '<p title="Hidden hint">{{ count }} · '
        "{% blocktranslate %}{{ n }} rows{% endblocktranslate %}</p>\n"
        "<script>const label = 'not text';</script><code>$!data.get('name')</code>\n"
        "{# Draft #}{% comment %}Not shown{% endcomment %}<button>Save</button>\n"
        '<input type="submit" value="Send now"> Herald · CSV\n'
    )
    problems = [line.split(": ", 1)[1] for line in unmarked_text(template, tmp_path)]
    assert problems == ["Hidden hint", "Save", "Send now"]


# --- Catalogues --------------------------------------------------------------------------

NAMED_PLACEHOLDER = re.compile(r"%\([a-zA-Z_]\w*\)[sdfr]|\{[a-zA-Z_]\w*\}")
CATALOGUE_LANGUAGES = [code for code, _name in settings.LANGUAGES if code != "en"]


def catalogue(language: str) -> polib.POFile:
    return polib.pofile(str(BASE_DIR / "locale" / language / "LC_MESSAGES" / "django.po"))


def catalogue_cases() -> list[tuple[str, str]]:
    cases = set()
    for language in CATALOGUE_LANGUAGES:
        for entry in catalogue(language):
            for source, _line in entry.occurrences or [("(no source)", "")]:
                cases.add((language, source))
    return sorted(cases)


def entry_problems(entry: polib.POEntry) -> list[str]:
    problems = []
    if "fuzzy" in entry.flags:
        problems.append("is marked fuzzy")
    if entry.msgid_plural:
        forms = [entry.msgstr_plural.get(index, "") for index in range(4)]
        wanted = set(NAMED_PLACEHOLDER.findall(entry.msgid)) | set(
            NAMED_PLACEHOLDER.findall(entry.msgid_plural)
        )
    else:
        forms = [entry.msgstr]
        wanted = set(NAMED_PLACEHOLDER.findall(entry.msgid))
    for index, form in enumerate(forms):
        if not form.strip():
            problems.append(f"form {index} is empty" if entry.msgid_plural else "is empty")
            continue
        if missing := wanted - set(NAMED_PLACEHOLDER.findall(form)):
            problems.append(f"form {index} lacks {', '.join(sorted(missing))}")
    return problems


@pytest.mark.parametrize(("language", "source"), catalogue_cases())
def test_every_catalogue_entry_is_translated_with_its_placeholders(language, source):
    problems = []
    for entry in catalogue(language):
        sources = {path for path, _line in entry.occurrences} or {"(no source)"}
        if source in sources and (found := entry_problems(entry)):
            problems.append(f"{entry.msgid!r}: {'; '.join(found)}")
    assert not problems, f"locale/{language} entries of {source}:\n" + "\n".join(problems)


def test_the_catalogue_check_sees_a_lost_placeholder_and_an_empty_plural_form():
    entry = polib.POEntry(
        msgid="%(count)s contacts", msgid_plural="%(count)s contacts", msgstr_plural={}
    )
    entry.msgstr_plural = {0: "%(count)s контакт", 1: "контакти", 2: "", 3: "%(count)s"}
    assert entry_problems(entry) == ["form 1 lacks %(count)s", "form 2 is empty"]
    assert entry_problems(polib.POEntry(msgid="Save", msgstr="", flags=["fuzzy"])) == [
        "is marked fuzzy",
        "is empty",
    ]


# --- The language a page speaks ----------------------------------------------------------


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def heading(response) -> str:
    match = re.search(r"<h1[^>]*>(.*?)</h1>", response.content.decode(), re.S)
    assert match, "no <h1> on the page"
    return " ".join(match.group(1).split())


def test_the_browser_language_applies_until_the_user_chooses_one(admin_client, admin_user):
    assert heading(admin_client.get("/", HTTP_ACCEPT_LANGUAGE="uk")) == "Огляд"
    response = admin_client.post(reverse("language_set"), {"language": "ru", "next": "/settings/"})
    assert response.status_code == 302 and response["Location"] == "/settings/"
    assert UserPreference.objects.get(user=admin_user).language == "ru"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "ru"

    # The account's choice beats both the browser and a stale cookie.
    admin_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = admin_client.get("/settings/", HTTP_ACCEPT_LANGUAGE="uk")
    assert heading(page) == "Настройки"
    assert '<html lang="ru"' in page.content.decode()
    assert page.cookies[settings.LANGUAGE_COOKIE_NAME].value == "ru"


def test_a_visitor_chooses_the_login_page_language_in_a_cookie(client, db):
    response = client.post(reverse("language_set"), {"language": "uk", "next": "/login/"})
    assert response.status_code == 302 and response["Location"] == "/login/"
    page = client.get("/login/").content.decode()
    assert "Увійдіть до свого маркетингового простору." in page
    assert 'aria-pressed="true">Українська' in page.replace("\n", "")


def test_the_switcher_refuses_other_languages_and_foreign_next_pages(client, db):
    assert client.post(reverse("language_set"), {"language": "de"}).status_code == 400
    response = client.post(
        reverse("language_set"), {"language": "uk", "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"
    assert client.get(reverse("language_set")).status_code == 405


def test_the_api_speaks_english_whatever_the_client_asks(client, full_key):
    response = client.get(
        "/api/v1/contacts/999999",
        HTTP_AUTHORIZATION=f"Bearer {full_key.secret}",
        HTTP_ACCEPT_LANGUAGE="uk",
    )
    assert response["Content-Language"] == "en"


def test_pages_of_errors_speak_the_language_too(admin_client):
    response = admin_client.get("/no-such-page/", HTTP_ACCEPT_LANGUAGE="ru")
    assert response.status_code == 404
    assert heading(response) == "Страница не найдена"


def test_a_viewer_is_told_in_their_language_which_role_a_page_needs(client, viewer):
    client.force_login(viewer)
    response = client.get("/settings/", HTTP_ACCEPT_LANGUAGE="uk")
    assert response.status_code == 403
    assert heading(response) == "Недостатньо прав"
    assert "адміністратор" in response.content.decode()


# --- The language of Herald's own mail ---------------------------------------------------


def test_the_organisation_language_is_set_on_the_settings_page(admin_client):
    organisation = Organisation.load()
    response = admin_client.post(
        "/settings/",
        {
            "name": organisation.name,
            "default_sender_name": "",
            "default_sender_email": "",
            "time_zone": "Europe/Kyiv",
            "language": "uk",
        },
    )
    assert response.status_code == 302
    assert org_language() == "uk"
    with organisation_language() as language:
        assert language == translation.get_language() == "uk"
    assert translation.get_language() != "uk"


def test_a_confirmation_email_speaks_the_organisation_language(db, settings, tmp_path):
    from contacts.models import Contact
    from contacts.optin import confirmation_send

    # The email's own wording belongs to the contacts pages; this subject, put in front of
    # theirs, shows which language the real send path renders in.
    (tmp_path / "contacts" / "emails").mkdir(parents=True)
    (tmp_path / "contacts" / "emails" / "confirm_subject.txt").write_text(
        "{% load i18n %}{% get_current_language as language %}"
        '{{ language }}: {% translate "Dashboard" %}'
    )
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    Organisation.objects.update_or_create(pk=1, defaults={"language": "uk"})
    contact = Contact.objects.create(email="olena@example.com", confirmed=False)

    with translation.override("ru"):
        confirmation_send(contact_id=contact.pk)
        assert translation.get_language() == "ru"
    (message,) = mail.outbox
    assert message.subject == "uk: Огляд"
    assert message.to == ["olena@example.com"]
