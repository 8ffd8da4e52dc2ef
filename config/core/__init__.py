"""Herald's ground floor: what every app stands on and that imports no app.

The organisation, API keys and rights, roles, the workspace shell (base layout, navigation,
login), health, DB and HTTP helpers (parsers, paging parameters, the API error handler and
schema hooks), the application error base and the registries through which lower apps hand
news upward (events). README, "Layout", draws the layers.
"""
