"""multipart/form-data bodies, refusing text PostgreSQL cannot store: the rule of
integrations.parsers for JSON and urlencoded bodies (NUL, lone surrogates), applied to form
fields sent as multipart."""

from rest_framework import parsers
from rest_framework.exceptions import ValidationError

from integrations.parsers import text_problem, text_storable


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parsed = super().parse(stream, media_type, parser_context)
        for key, values in parsed.data.lists():
            for text in (key, *values):
                if problem := text_problem(text):
                    raise ValidationError({text_storable(key): [problem]})
        for key in parsed.files:
            if problem := text_problem(key):
                raise ValidationError({text_storable(key): [problem]})
        return parsed
