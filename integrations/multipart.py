"""multipart/form-data bodies, refusing text PostgreSQL cannot store: the NUL rule of
integrations.parsers (JSON and urlencoded bodies), applied to form fields sent as multipart."""

from rest_framework import parsers
from rest_framework.exceptions import ValidationError

from integrations.parsers import NUL, NUL_PROBLEM


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parsed = super().parse(stream, media_type, parser_context)
        for key, values in parsed.data.lists():
            if NUL in key or any(NUL in value for value in values):
                raise ValidationError({key.replace(NUL, "\\u0000"): [NUL_PROBLEM]})
        for key in parsed.files:
            if NUL in key:
                raise ValidationError({key.replace(NUL, "\\u0000"): [NUL_PROBLEM]})
        return parsed
