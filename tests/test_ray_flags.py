"""--ray without a cluster: a Ray already initialised in the process at another address is
a user error naming both (ray_jobs._connect), the same address (or none asked) is used as
it is; and `logz --method exact|ve --ray ADDRESS` says in a note that it ran here."""

import socket
from pathlib import Path
from types import SimpleNamespace

import pytest

from ebmlang.cli.app import main
from ebmlang.distributed import ray_jobs
from ebmlang.errors import UserError

ISING = Path(__file__).resolve().parent.parent / "examples" / "ising.ebm"


def fake_ray(gcs: str):
    """A Ray already initialised in this process, connected (as a driver) to `gcs`."""
    return SimpleNamespace(is_initialized=lambda: True,
                           get_runtime_context=lambda: SimpleNamespace(gcs_address=gcs),
                           init=lambda **kw: pytest.fail("must not connect again"))


@pytest.fixture(autouse=True)
def no_client(monkeypatch):
    monkeypatch.setattr(ray_jobs, "_client_address", lambda: None)


def test_another_address_is_an_error_naming_both():
    with pytest.raises(UserError) as err:
        ray_jobs._connect(fake_ray("10.1.2.3:6379"), "10.1.2.4:6379")
    assert "10.1.2.3:6379" in str(err.value) and "10.1.2.4:6379" in str(err.value)
    with pytest.raises(UserError, match="10.1.2.3:6380"):      # the port counts too
        ray_jobs._connect(fake_ray("10.1.2.3:6380"), "10.1.2.3:6379")
    with pytest.raises(UserError, match="ray://10.1.2.3:10001"):  # a driver is not a client
        ray_jobs._connect(fake_ray("10.1.2.3:6379"), "ray://10.1.2.3:10001")


def test_same_address_or_none_asked_reuses_the_connection():
    ray = fake_ray("10.1.2.3:6379")
    for address in ("10.1.2.3:6379", None, "auto", "local"):
        assert ray_jobs._connect(ray, address) is False       # not started here: not shut down
    own = socket.gethostbyname(socket.gethostname())         # this machine, however it is named
    assert ray_jobs._connect(fake_ray(f"{own}:6379"), "127.0.0.1:6379") is False
    assert ray_jobs._connect(fake_ray("127.0.0.1:6379"), "localhost:6379") is False


def test_a_client_connection_compares_its_own_address(monkeypatch):
    monkeypatch.setattr(ray_jobs, "_client_address", lambda: "ray://10.1.2.3:10001")
    ray = fake_ray("10.1.2.3:6379")
    assert ray_jobs._connect(ray, "ray://10.1.2.3:10001") is False
    with pytest.raises(UserError, match="ray://10.1.2.3:10001"):
        ray_jobs._connect(ray, "ray://10.1.2.9:10001")


@pytest.mark.parametrize("method", ["exact", "ve"])
def test_exact_logz_with_ray_notes_it_ran_locally(method, capsys):
    # the address is never contacted: an exact method runs in this one process
    code = main(["logz", str(ISING), "--set", "L=3", "--method", method, "--ray", "10.1.2.3:6379"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"note: --ray is for method ais; {method} ran here, locally" in out.splitlines()[0]
    assert "log Z = 9.01026094106" in out        # 3x3 Ising torus, by enumeration of 512 states
