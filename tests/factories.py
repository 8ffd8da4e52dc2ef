import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    """`UserFactory(role="viewer")`; role None makes a user without any role."""

    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        self.set_password(PASSWORD)
        if extracted:
            self.groups.add(Group.objects.get_or_create(name=extracted)[0])
            self.is_staff = extracted == "admin"
        if create:
            self.save()
