import pytest


@pytest.fixture(scope="module", params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def module_db_url(request, tmp_path_factory):
    """One migrated database per test module and backend, for a shared setup."""
    from support import database_from_template

    yield from database_from_template(request, request.param,
                                      tmp_path_factory.mktemp("storefront-db"), "s_")
