"""Herald's own API for the organisation's frequency caps, under /api/herald/settings/:
GET lists them, PUT replaces them (a channel left out has no cap)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.send_rules import caps_clean, frequency_caps, frequency_caps_replace
from config.core.models import Scope
from config.core.parsers import request_body
from config.core.schema import error_response
from contacts.models import ChannelType


class FrequencyCapSerializer(serializers.Serializer):
    """The schema of one cap; the rules (and their 400s) are campaigns.send_rules.caps_clean."""

    channel = serializers.ChoiceField(choices=ChannelType.choices)
    limit = serializers.IntegerField(
        min_value=1, help_text="At most this many marketing messages per contact…"
    )
    periodDays = serializers.IntegerField(min_value=1, help_text="…in any this many days.")


class FrequencyCapsView(APIView):
    required_scope = Scope.MANAGE

    @extend_schema(
        summary="The organisation's frequency caps, per channel",
        operation_id="herald_frequency_caps_get",
        responses={200: FrequencyCapSerializer(many=True)},
    )
    def get(self, request):
        return Response([cap.as_json() for cap in frequency_caps()])

    @extend_schema(
        summary="Replace the frequency caps (campaign runs and workflow sends count; "
        "transactional messages are exempt)",
        operation_id="herald_frequency_caps_put",
        request=FrequencyCapSerializer(many=True),
        responses={
            200: FrequencyCapSerializer(many=True),
            400: error_response("`field` names the entry and key, e.g. 0.limit."),
        },
    )
    def put(self, request):
        caps = caps_clean(request_body(request, object_only=False))
        return Response([cap.as_json() for cap in frequency_caps_replace(caps=caps)])
