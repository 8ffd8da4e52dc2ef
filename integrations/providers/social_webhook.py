"""A social publishing webhook: social platforms (Facebook, LinkedIn, …) connected through an
HTTP endpoint the organisation runs or rents (a Zapier/Make hook, its own publishing
service), which holds the platforms' tokens and posts for Herald.

- Accounts: listed in the integration's settings, one a line, `platform | account id | name`
  (`facebook | 1029384756 | Herald Shop`). They are what the CRM campaigns API's
  `social-profiles/:platform` answers and what makes a social channel of a campaign
  launchable: a platform the integration connects but lists no account for is not.
- Connecting (`connection_test`): POST `{"test": true, "accounts": [...]}` to the endpoint
  with `Authorization: Bearer <API key>`; any 2xx answer is a working endpoint, anything else
  is shown with the endpoint's own words.

Decisions:
- Accounts are typed in rather than fetched: the endpoint is the organisation's own and has no
  listing call Herald could rely on; the test call sends the list so the endpoint can check it.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from campaigns.delivery.providers import (
    Provider,
    ProviderError,
    SettingField,
    SocialAccount,
    provider_register,
)
from campaigns.lifecycle_input import SOCIAL_PLATFORMS
from config.core.errors import FieldError
from integrations.providers.http_generic import (
    DEFAULT_TIMEOUT,
    HttpClient,
    answer_error,
    timeout_check,
    url_check,
)

ACCOUNTS_MAX = 200
ACCOUNT_FIELD_MAX = 200


def accounts_parse(text: Any) -> list[SocialAccount]:
    """The settings' account lines as accounts; raises FieldError naming the line."""
    if not isinstance(text, str):
        raise FieldError("accounts", "must be text, one account a line")
    accounts: list[SocialAccount] = []
    seen: set[tuple[str, str]] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [part.strip() for part in line.split("|")]
        if len(parts) != 3 or not all(parts):
            raise FieldError(
                "accounts",
                f"line {number}: write 'platform | account id | name' "
                "(e.g. facebook | 1029384756 | Herald Shop)",
            )
        platform, account_id, name = parts[0].lower(), parts[1], parts[2]
        if platform not in SOCIAL_PLATFORMS:
            raise FieldError(
                "accounts",
                f"line {number}: unknown platform {parts[0]!r}; known: "
                + ", ".join(SOCIAL_PLATFORMS),
            )
        if len(account_id) > ACCOUNT_FIELD_MAX or len(name) > ACCOUNT_FIELD_MAX:
            raise FieldError("accounts", f"line {number}: at most {ACCOUNT_FIELD_MAX} characters")
        if (platform, account_id) in seen:
            raise FieldError("accounts", f"line {number}: {platform} {account_id} is listed twice")
        seen.add((platform, account_id))
        accounts.append(SocialAccount(id=account_id, name=name, platform=platform))
    if len(accounts) > ACCOUNTS_MAX:
        raise FieldError("accounts", f"at most {ACCOUNTS_MAX} accounts")
    return accounts


@provider_register
class SocialWebhookProvider(Provider):
    kind = "social_webhook"
    label = "Social publishing webhook (Facebook, Instagram, LinkedIn, X, TikTok)"
    channels = frozenset(SOCIAL_PLATFORMS)
    fields: ClassVar[tuple[SettingField, ...]] = (
        SettingField("url", "Publishing endpoint URL", kind="url", help="Herald POSTs JSON to it."),
        SettingField("api_key", "API key", secret=True, help="Sent as a bearer token."),
        SettingField(
            "accounts",
            "Accounts",
            kind="textarea",
            required=False,
            help="One a line: platform | account id | name, e.g. "
            "facebook | 1029384756 | Herald Shop.",
            default="",
        ),
        SettingField("timeout", "Timeout (seconds)", kind="float", required=False, default=10),
    )

    @classmethod
    def settings_validate(cls, values: dict[str, Any]) -> dict[str, Any]:
        cleaned = dict(values)
        cleaned["url"] = url_check("url", values.get("url"))
        if not str(values.get("api_key") or ""):
            raise FieldError("api_key", "This field is required.")
        accounts_parse(values.get("accounts") or "")
        cleaned["timeout"] = timeout_check("timeout", values.get("timeout") or 10)
        return cleaned

    def accounts(self) -> list[SocialAccount]:
        return accounts_parse(self.setting("accounts") or "")

    def social_accounts(self, platform: str) -> list[SocialAccount]:
        return [account for account in self.accounts() if account.platform == platform]

    def connection_test(self) -> str:
        url = str(self.setting("url") or "")
        if not url:
            raise ProviderError("the integration has no endpoint URL", permanent=True)
        payload = {
            "test": True,
            "accounts": [
                {"platform": a.platform, "id": a.id, "name": a.name} for a in self.accounts()
            ],
        }
        client = HttpClient(float(self.setting("timeout") or DEFAULT_TIMEOUT))
        try:
            answer = client.request(
                "POST",
                url,
                headers={"Authorization": f"Bearer {self.setting('api_key') or ''}"},
                body=json.dumps(payload).encode(),
            )
        finally:
            client.close()
        if not 200 <= answer.status < 300:
            raise answer_error(answer, "POST")
        return f"the endpoint answered {answer.status}"
