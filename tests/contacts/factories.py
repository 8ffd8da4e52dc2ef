import factory

from contacts.models import Contact, CustomField, Segment, SegmentKind


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.Sequence(lambda n: f"person{n}@example.com")
    confirmed = True


class CustomFieldFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomField

    name = factory.Sequence(lambda n: f"Field {n}")
    key = factory.Sequence(lambda n: f"FIELD_{n}")


class SegmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Segment

    name = factory.Sequence(lambda n: f"Segment {n}")
    kind = SegmentKind.STATIC
