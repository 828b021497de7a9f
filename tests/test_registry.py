"""edgerestore.registry: duplicates refused, unknown names listed, references lazy."""

import sys

import pytest

from edgerestore.registry import Ref, Registry, RegistryError


def test_duplicate_name_is_refused_and_first_entry_kept():
    reg = Registry("stage")
    reg.add("sharpen", 1, "first")
    with pytest.raises(RegistryError, match="'sharpen' is already registered"):
        reg.add("sharpen", 2)
    assert reg.get("sharpen") == 1


def test_unknown_name_lists_what_exists_in_order():
    reg = Registry("denoise method")
    for n in ("nlm", "bm3d", "model"):
        reg.add(n, n.upper(), f"{n} method")
    with pytest.raises(RegistryError, match="unknown denoise method 'wiener'; available: nlm, bm3d, model"):
        reg.get("wiener")
    assert reg.names() == ["nlm", "bm3d", "model"]
    assert reg.describe()[1] == ("bm3d", "bm3d method")
    assert "model" in reg and "wiener" not in reg and len(reg) == 3


def test_decorator_and_name_check():
    def identifier(name):
        if not name.isidentifier():
            raise RegistryError(f"{name!r} is not an identifier")

    reg = Registry("stage", check_name=identifier)

    @reg.register("double", description="x2")
    def double(x):
        return 2 * x

    assert reg["double"](3) == 6
    with pytest.raises(RegistryError, match="not an identifier"):
        reg.add("two words", double)


def test_reference_is_imported_on_first_use_only():
    module = "edgerestore.metrics"
    sys.modules.pop(module, None)
    reg = Registry("metric")
    reg.add("psnr", Ref(f"{module}:psnr"))
    assert module not in sys.modules
    fn = reg.get("psnr")
    assert module in sys.modules and fn.__name__ == "psnr"
    with pytest.raises(RegistryError, match="package.module:attribute"):
        Ref("no_colon")
