"""`crieur staff add/passwd` and `crieur commune approval`, run as an operator runs them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from schemas import Commune
from services.notices.store import NatsStore
from tests.integration.notices.helpers import random_insee
from tests.integration.staff.helpers import crieur

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(nats_url: str) -> AsyncIterator[NatsStore]:
    s = await NatsStore.connect(nats_url, name="test-staff-cli")
    yield s
    await s.close()


async def test_staff_add_sets_a_password_and_passwd_resets_it(
    nats_url: str, store: NatsStore
) -> None:
    insee = random_insee()
    await store.commune_registry.add(insee, "Lavoncourt")
    name = f"Élise Martin {insee}"
    code, out, err = await crieur(nats_url, "staff", "add", "--commune", insee, "--name", name,
                                  "--password-stdin", stdin="premier mot de passe\n")
    assert code == 0, err
    assert out.strip().startswith("crieur_")  # the token, for scripts, as before
    assert f"user 'elise-martin-{insee}'" in err
    assert await store.staff_registry.verify(f"elise-martin-{insee}", "premier mot de passe") is not None
    assert await store.staff_registry.for_token(out.strip()) is not None

    code, _, err = await crieur(nats_url, "staff", "passwd", name, "--password-stdin",
                                stdin="second mot de passe\n")
    assert code == 0, err
    assert await store.staff_registry.verify(name, "premier mot de passe") is None
    account = await store.staff_registry.verify(name, "second mot de passe")
    assert account is not None and account.communes == (insee,)

    code, out, _ = await crieur(nats_url, "staff", "list")
    assert f"elise-martin-{insee}\t{name}\ttoken " in out
    assert f"\t{insee}\tactive: 1 token, password set " in out

    code, _, err = await crieur(nats_url, "staff", "passwd", name, "--password-stdin",
                                stdin="court\n")
    assert code == 2 and "at least 10 characters" in err
    code, _, err = await crieur(nats_url, "staff", "passwd", f"Personne {insee}",
                                "--password-stdin", stdin="un mot de passe long\n")
    assert code == 1 and "no staff member named" in err


async def test_staff_add_without_a_terminal_still_makes_a_token(
    nats_url: str, store: NatsStore
) -> None:
    insee = random_insee()
    await store.commune_registry.add(insee, "Lavoncourt")
    code, out, err = await crieur(nats_url, "staff", "add", "--commune", insee,
                                  "--name", f"Script {insee}")
    assert code == 0, err
    assert out.strip().startswith("crieur_")
    assert "no password set" in err
    assert await store.staff_registry.account(f"script-{insee}") is None


async def test_commune_approval_is_set_shown_and_cleared(nats_url: str, store: NatsStore) -> None:
    insee = random_insee()
    await store.commune_registry.add(insee, "Lavoncourt")
    code, out, err = await crieur(nats_url, "commune", "approval", insee, "--require", "alerte",
                                  "--require", "travaux")
    assert code == 0, err
    assert "approval required for: alerte, travaux" in out
    # Read from the bucket itself: this store's own copy is what it wrote before.
    entry = await store.commune_registry.kv.get(insee)
    commune = Commune.model_validate_json(entry.value or b"")
    assert commune.settings.approval_required_for == ("alerte", "travaux")
    code, out, _ = await crieur(nats_url, "commune", "approval", insee)
    assert "alerte, travaux" in out
    code, out, _ = await crieur(nats_url, "commune", "approval", insee, "--none")
    assert code == 0 and "approval required for: none" in out
    code, _, err = await crieur(nats_url, "commune", "approval", "99999", "--require", "alerte")
    assert code == 1 and "not registered" in err
