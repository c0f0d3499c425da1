"""The compiled-model cache: a warm load gives the same model as a cold one; a changed text,
const, set file or version misses; a corrupt or truncated entry is rebuilt; it can be turned off."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ebmlang
from ebmlang import cachedir
from ebmlang import model as driver

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("EBMLANG_CACHE", str(d))
    monkeypatch.delenv("EBMLANG_MODEL_CACHE", raising=False)
    return d


@pytest.fixture
def no_compile(monkeypatch):
    """Make compiling fail: a load that still works came from the cache."""
    def refuse(*a, **k):
        raise AssertionError("compiled, not loaded from the cache")
    return lambda: monkeypatch.setattr(driver, "check", refuse)


def entries(cache: Path) -> list[Path]:
    return sorted((cache / "models").glob("*.model"))


def same_model(a, b) -> None:
    assert a.source == b.source and a.name == b.name and a.methods == b.methods
    assert a.checked.n_state == b.checked.n_state and a.checked.consts == b.checked.consts
    assert len(a.terms) == len(b.terms)
    for s, t in zip(a.terms + a.stat_terms, b.terms + b.stat_terms):
        assert (s.owner, s.number, s.sign, s.names, s.size) == (t.owner, t.number, t.sign, t.names, t.size)
        for r, q in zip(s.reads, t.reads):
            assert np.array_equal(r.ids, q.ids)
    assert [b.label for b in a.blocks] == [b.label for b in b.blocks]
    for p, q in zip(a.blocks, b.blocks):
        for x, y in zip(p.parts, q.parts):
            assert x.family == y.family and np.array_equal(x.ids, y.ids)
    assert np.array_equal(a.graph.family_of, b.graph.family_of)
    assert a.graph.blankets == b.graph.blankets and a.graph.colouring == b.graph.colouring
    assert np.array_equal(a.graph.edges, b.graph.edges)
    assert np.array_equal(a.params.theta, b.params.theta)


@pytest.mark.parametrize("name", ["ising.ebm", "rbm.ebm", "network.ebm"])
def test_warm_load_is_the_cold_model(cache, no_compile, name):
    cold = ebmlang.load(EXAMPLES / name)
    assert len(entries(cache)) == 1
    no_compile()
    warm = ebmlang.load(EXAMPLES / name)
    same_model(cold, warm)
    for backend in ("numpy", "numba"):
        a = cold.sample(draws=20, chains=2, seed=3, backend=backend).states
        b = warm.sample(draws=20, chains=2, seed=3, backend=backend).states
        assert np.array_equal(a, b)
    assert cold.sampler_text(next(iter(cold.methods))) == warm.sampler_text(next(iter(warm.methods)))
    assert sorted(cold.graph.nx.edges) == sorted(warm.graph.nx.edges)
    assert str(cold.conditionals()) == str(warm.conditionals())


def test_real_family_conditional_is_derived_again(cache, no_compile):
    text = "model g\nvar x : real\nparam m = 1.0\nenergy e : 0.5 * (x - m)^2\n"
    cold = ebmlang.compile(text)
    no_compile()
    warm = ebmlang.compile(text)
    assert warm.methods == cold.methods == {"x": ("gaussian", 1.0, False)}
    assert warm.real_forms["x"].quad is None        # kept without sympy
    assert str(warm.conditionals()) == str(cold.conditionals())
    assert np.array_equal(cold.sample(draws=50, seed=1).states, warm.sample(draws=50, seed=1).states)


def test_check_output_is_the_same_warm_cold_and_off(cache, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), EBMLANG_CACHE=str(cache))
    def check(**extra):
        return subprocess.run([sys.executable, "-m", "ebmlang", "check", "examples/ising.ebm"],
                              cwd=ROOT, env=dict(env, **extra), capture_output=True, text=True,
                              check=True).stdout
    off = check(EBMLANG_MODEL_CACHE="off")
    assert not entries(cache)
    cold, warm = check(), check()
    assert len(entries(cache)) == 1
    assert off == cold == warm and "ising" in warm


def test_changes_miss_the_cache(cache, tmp_path, monkeypatch):
    text = (EXAMPLES / "network.ebm").read_text()
    shutil.copy(EXAMPLES / "karate_edges.csv", tmp_path / "karate_edges.csv")
    path = tmp_path / "network.ebm"
    path.write_text(text)
    base = ebmlang.load(path)
    assert len(entries(cache)) == 1
    path.write_text(text.replace("J = 0.3", "J = 0.4"))
    assert ebmlang.load(path).params["J"] == pytest.approx(0.4)
    assert len(entries(cache)) == 2
    path.write_text(text)
    assert ebmlang.load(path, N=35).checked.n_state == 35
    assert len(entries(cache)) == 3
    edges = (tmp_path / "karate_edges.csv")
    edges.write_text("u,v\n0,1\n1,2\n")             # the set file changed, the text did not
    changed = ebmlang.load(path)
    assert changed.terms[0].size == 2 != base.terms[0].size
    assert len(entries(cache)) == 3                 # the same key, stored anew
    monkeypatch.setattr(cachedir, "versions", lambda: "another ebmlang")
    ebmlang.load(path)
    assert len(entries(cache)) == 4


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "header"])
def test_a_damaged_entry_is_rebuilt(cache, damage):
    cold = ebmlang.load(EXAMPLES / "ising.ebm")
    [entry] = entries(cache)
    data = bytearray(entry.read_bytes())
    if damage == "flip":
        data[-100] ^= 0xFF
    elif damage == "truncate":
        data = data[:len(data) // 2]
    elif damage == "empty":
        data = b""
    else:
        data[len(cachedir.MAGIC) + 2] ^= 0xFF
    entry.write_bytes(bytes(data))
    assert cachedir.read_entry(cache / "models", entry.stem) is None
    again = ebmlang.load(EXAMPLES / "ising.ebm")
    same_model(cold, again)
    assert cachedir.read_entry(cache / "models", entry.stem) is not None  # stored anew


def test_an_entry_that_does_not_unpickle_is_rebuilt(cache):
    cold = ebmlang.load(EXAMPLES / "ising.ebm")
    [entry] = entries(cache)
    cachedir.write_entry(cache / "models", entry.stem, b"not a pickle", [])
    same_model(cold, ebmlang.load(EXAMPLES / "ising.ebm"))
    assert cachedir.read_entry(cache / "models", entry.stem)[1] != b"not a pickle"


def test_the_cache_can_be_turned_off(cache, monkeypatch):
    monkeypatch.setenv("EBMLANG_MODEL_CACHE", "off")
    ebmlang.load(EXAMPLES / "ising.ebm")
    assert cachedir.model_cache_dir() is None and not entries(cache)


def test_a_directory_others_can_write_is_not_used(cache):
    cache.mkdir()
    cache.chmod(0o777)
    ebmlang.load(EXAMPLES / "ising.ebm")
    assert cachedir.model_cache_dir() is None and not entries(cache)


def test_a_warm_run_imports_neither_sympy_nor_lark(cache):
    code = ("import sys, ebmlang; m = ebmlang.load('examples/ising.ebm'); "
            "m.sample(draws=2, chains=1, seed=0); "
            "print(sorted(k for k in ('sympy', 'lark') if k in sys.modules))")
    env = dict(os.environ, PYTHONPATH=str(ROOT), EBMLANG_CACHE=str(cache))
    def run():
        return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                              capture_output=True, text=True, check=True).stdout.strip()
    assert run() == "['lark', 'sympy']"
    assert run() == "[]"
