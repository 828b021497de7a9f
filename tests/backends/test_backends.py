"""Backends: the ONNX Runtime runner against NumPy references, and backend selection."""

from __future__ import annotations

import numpy as np
import pytest

from edgerestore.backends import (
    BACKENDS,
    RunnerOptions,
    backend_names,
    open_runner,
    select_backend,
)
from edgerestore.backends.onnxrt import OnnxRuntimeRunner, SessionFromOnnx
from edgerestore.errors import BackendError, InputError, ModelError
from tests import tiny_models as tm


@pytest.fixture(scope="module")
def blur_path(tmp_path_factory):
    return tm.save(tm.box_blur(channels=3), tmp_path_factory.mktemp("m") / "blur.onnx")


def _box_blur_reference(x: np.ndarray) -> np.ndarray:
    """float64 3x3 mean with zero padding, per channel; x is N x C x H x W."""
    p = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    h, w = x.shape[2:]
    return sum(p[:, :, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)) / 9


def test_ort_cpu_runner_matches_numpy(blur_path, rng):
    x = rng.random((2, 3, 23, 17), dtype=np.float32)
    with OnnxRuntimeRunner(SessionFromOnnx(path=str(blur_path), threads=2)) as runner:
        assert runner.input_names == ("image",)
        y = runner.infer({"image": x})
    np.testing.assert_allclose(y, _box_blur_reference(x), rtol=0, atol=1e-6)


def test_runner_refuses_wrong_feed_and_inactive_use(blur_path, rng):
    runner = OnnxRuntimeRunner(SessionFromOnnx(path=str(blur_path)))
    with pytest.raises(BackendError, match="not active"):
        runner.infer({"image": np.zeros((1, 3, 4, 4), np.float32)})
    with runner:
        with pytest.raises(InputError, match="model inputs are"):
            runner.infer({"img": np.zeros((1, 3, 4, 4), np.float32)})
        with pytest.raises(BackendError, match="inference failed"):
            runner.infer({"image": np.zeros((1, 5, 4, 4), np.float32)})  # wrong channels


def test_unknown_backend_lists_the_available_ones():
    with pytest.raises(BackendError) as err:
        select_backend("tensorflow")
    msg = str(err.value)
    assert msg.startswith("Requested backend 'tensorflow'; available: auto, ")
    for name in BACKENDS:
        assert name in msg


def test_unavailable_provider_names_the_fix(blur_path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has onnxruntime-gpu")
    with pytest.raises(BackendError, match="cannot run here.*onnxruntime-gpu"):
        select_backend("ort-cuda")
    with pytest.raises(BackendError, match=r"Requested ONNX Runtime provider\(s\).*offers"):
        SessionFromOnnx(path=str(blur_path), providers=("CUDAExecutionProvider",))()


def test_auto_explains_its_choice(blur_path):
    sel = select_backend("auto")
    assert sel.backend.name in BACKENDS
    assert sel.reason.startswith(f"auto picked {sel.backend.name}")
    if sel.backend.name == "ort-cpu":
        assert "skipped tensorrt" in sel.reason and "ort-cuda" in sel.reason
    runner, reason = open_runner(str(blur_path), "auto", RunnerOptions(threads=1))
    try:
        assert reason.startswith("auto picked") and runner.active
    finally:
        runner.deactivate()


def test_threads_default_to_the_usable_cores():
    import os

    assert RunnerOptions().resolved_threads() == len(os.sched_getaffinity(0))
    assert RunnerOptions(threads=3).resolved_threads() == 3
    assert backend_names()[0] == "auto"


def test_ort_load_error_is_a_model_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    with pytest.raises(ModelError, match="ONNX Runtime could not load"):
        SessionFromOnnx(path=str(bad))()


def test_backends_are_one_registry_with_the_names_users_know():
    from edgerestore.registry import Registry

    assert isinstance(BACKENDS, Registry) and BACKENDS.kind == "backend"
    assert sorted(BACKENDS) == ["ort-cpu", "ort-cuda", "tensorrt"]
    assert backend_names() == ["auto", "ort-cpu", "ort-cuda", "tensorrt"]
    assert dict(BACKENDS.describe())["ort-cpu"] == BACKENDS["ort-cpu"].summary
    with pytest.raises(BackendError, match="^Requested backend 'onnx'; available: "
                                           "auto, ort-cpu, ort-cuda, tensorrt$"):
        select_backend("onnx")


def test_a_backend_name_cannot_be_registered_twice():
    from edgerestore.backends import Backend, register
    from edgerestore.registry import RegistryError

    taken = BACKENDS["ort-cpu"]
    with pytest.raises(RegistryError, match="backend 'ort-cpu' is already registered"):
        register(Backend(name="ort-cpu", summary="an impostor", probe=lambda: None,
                         make_runner=taken.make_runner))
    assert BACKENDS["ort-cpu"] is taken
    extra = Backend(name="test-extra", summary="registered by a test", probe=lambda: "never here",
                    make_runner=taken.make_runner)
    try:
        assert register(extra) is extra and "test-extra" in backend_names()
        with pytest.raises(BackendError, match="'test-extra' cannot run here: never here"):
            select_backend("test-extra")
    finally:
        BACKENDS.remove("test-extra")
    assert "test-extra" not in BACKENDS
