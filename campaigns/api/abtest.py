"""Herald's own A/B test resources (under /api/herald/): a campaign's test with each
variant's figures and the confidence of its difference, and the marketer's pick of the
winner. Thin: campaigns.abtest reads and writes."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns import abtest
from campaigns.models import ABTest, WinnerMetric, WinnerSelection
from config.core.models import Scope
from config.core.parsers import request_body_refuse_malformed
from config.core.schema import error_response


class ABVariantResultSerializer(serializers.Serializer):
    variant = serializers.CharField(help_text="A, B, …")
    position = serializers.IntegerField()
    subject = serializers.CharField(allow_blank=True)
    preheader = serializers.CharField(allow_blank=True)
    fromName = serializers.CharField(allow_blank=True)
    templateId = serializers.IntegerField(allow_null=True)
    recipients = serializers.IntegerField(help_text="Rows of the test share with this variant.")
    uniqueOpens = serializers.IntegerField(help_text="Human opens (or clicks), once each.")
    uniqueClicks = serializers.IntegerField(help_text="Human clicks, once each.")
    conversions = serializers.IntegerField(help_text="Delivered orders credited to it.")
    revenue = serializers.DecimalField(max_digits=14, decimal_places=2)
    openRate = serializers.FloatField(help_text="Percent of recipients.")
    clickRate = serializers.FloatField(help_text="Percent of recipients.")
    conversionRate = serializers.FloatField(help_text="Percent of recipients.")
    comparedWith = serializers.CharField(
        allow_null=True, help_text="The best other variant by the test's metric."
    )
    confidence = serializers.FloatField(
        allow_null=True,
        help_text="Percent confidence that this variant's rate differs from comparedWith's "
        "(two-proportion z-test on the metric's rate; conversions for revenue).",
    )
    winner = serializers.BooleanField()


class ABTestResultSerializer(serializers.Serializer):
    campaignId = serializers.IntegerField()
    runId = serializers.IntegerField(allow_null=True)
    state = serializers.ChoiceField(choices=["draft", "testing", "awaiting pick", "decided"])
    testPercent = serializers.IntegerField()
    winnerMetric = serializers.ChoiceField(choices=WinnerMetric.values)
    waitHours = serializers.FloatField()
    winnerSelection = serializers.ChoiceField(choices=WinnerSelection.values)
    decideAt = serializers.DateTimeField(allow_null=True)
    winner = serializers.CharField(allow_null=True)
    decidedAt = serializers.DateTimeField(allow_null=True)
    decidedHow = serializers.CharField(allow_blank=True)
    figuresAt = serializers.DateTimeField(allow_null=True)
    variants = ABVariantResultSerializer(many=True)


class WinnerPickSerializer(serializers.Serializer):
    variant = serializers.CharField(help_text="The winning variant's letter: A, B, …")


def _test_or_404(campaign_id: str) -> ABTest:
    test = (
        ABTest.objects.filter(campaign_id=int(campaign_id), campaign__deleted_at__isnull=True)
        .select_related("campaign")
        .first()
    )
    if test is None:
        raise NotFound(f"Campaign {campaign_id} has no A/B test.")
    return test


class ABTestView(APIView):
    required_scope = Scope.MANAGE

    @extend_schema(
        summary="A campaign's A/B test: variants with figures and confidence, the winner",
        operation_id="herald_campaign_ab_test",
        responses={200: ABTestResultSerializer},
    )
    def get(self, request, campaign_id: str):
        test = _test_or_404(campaign_id)
        return Response(ABTestResultSerializer(abtest.ab_results(test)).data)


class ABTestWinnerView(APIView):
    required_scope = Scope.MANAGE

    @extend_schema(
        summary="Pick the winner by hand; it goes to the rest of the audience now",
        operation_id="herald_campaign_ab_test_winner",
        request=WinnerPickSerializer,
        responses={
            200: ABTestResultSerializer,
            409: error_response(
                "The test has not started, another variant already won, or the run has ended."
            ),
        },
    )
    def post(self, request, campaign_id: str):
        request_body_refuse_malformed(request)
        test = _test_or_404(campaign_id)
        pick = WinnerPickSerializer(data=request.data)
        if not pick.is_valid():
            raise ValidationError(pick.errors)
        test = abtest.ab_winner_pick(
            test=test, variant=pick.validated_data["variant"], user=request.user
        )
        return Response(ABTestResultSerializer(abtest.ab_results(test)).data)
