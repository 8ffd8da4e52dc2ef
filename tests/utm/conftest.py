from tests.tracking.conftest import delivery, make_delivery, public_base_url  # noqa: F401
