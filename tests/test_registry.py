import pytest

from hyperzoo.errors import HyperzooError, UnknownNameError
from hyperzoo.registry import Registry


def make() -> Registry:
    reg: Registry = Registry("widget", list_hint="see widgets()")

    @reg.register(family="small")
    def alpha() -> str:
        return "a"

    reg.add("alpha_big", lambda: "A", family="big")
    reg.add("beta", lambda: "b", family="small", paper="X 2020")
    return reg


def test_register_get_and_list():
    reg = make()
    assert reg.get("alpha")() == "a"
    assert reg.names() == ["alpha", "alpha_big", "beta"]
    assert reg.names("alpha*") == ["alpha", "alpha_big"]
    assert reg.names(["beta", "alpha_b*"]) == ["alpha_big", "beta"]
    assert reg.names(family="small") == ["alpha", "beta"]
    assert reg.entry("beta").meta == {"paper": "X 2020"}
    assert "beta" in reg and "gamma" not in reg and len(reg) == 3


def test_duplicate_name_is_an_error():
    reg = make()
    with pytest.raises(ValueError, match="already registered"):
        reg.add("beta", lambda: None)


def test_unknown_name_suggests_closest():
    reg = make()
    with pytest.raises(UnknownNameError) as info:
        reg.get("alpah")
    msg = str(info.value)
    assert "unknown widget 'alpah'" in msg and "'alpha'" in msg and "see widgets()" in msg
    assert isinstance(info.value, HyperzooError) and isinstance(info.value, LookupError)
    # a bare prefix suggests its family
    assert reg.closest("alp")[:2] == ["alpha", "alpha_big"]
