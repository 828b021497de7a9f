"""TensorRT backend: everything around the engine that runs without a GPU, and (marked
``tensorrt``) real builds and runs, which only a machine with an NVIDIA GPU and the
``gpu`` extra executes. On a CPU-only machine the marked tests skip with the reason."""

from __future__ import annotations

import logging
import os
from dataclasses import replace

import numpy as np
import pytest

from edgerestore._lazy import is_installed
from edgerestore.backends import BACKENDS, open_runner, select_backend
from edgerestore.backends import onnx_graph
from edgerestore.backends.tensorrt import cache as C
from edgerestore.backends.tensorrt import precision as P
from edgerestore.backends.tensorrt import profile as PR
from edgerestore.backends.tensorrt.loader import EngineBytesFromOnnx
from edgerestore.backends.tensorrt import probe
from edgerestore.backends.tensorrt.runner import TensorRTRunner
from edgerestore.cli import main
from edgerestore.errors import BackendError, InputError, MissingDependencyError, ModelError
from edgerestore.model_spec import read_spec
from tests import tiny_models as tm

HAVE_TRT = is_installed("tensorrt")
PROFILE = {"image": ((1, 1, 32, 32), (1, 1, 64, 64), (1, 1, 128, 128))}


def _key(**overrides):
    args = dict(onnx_bytes=b"model-bytes", precision="fp16", profile=PROFILE,
                trt_version="10.13.0.35", gpu_name="Orin", compute_capability="8.7")
    args.update(overrides)
    onnx_bytes = args.pop("onnx_bytes")
    return C.engine_cache_key(onnx_bytes, **args)


# --------------------------------------------------------------------------- cache keys
def test_cache_key_is_stable_and_depends_on_everything_an_engine_depends_on():
    base = _key()
    assert base == _key() and len(base) == 64 and int(base, 16) >= 0
    variants = [
        _key(onnx_bytes=b"model-bytes!"),
        _key(precision="int8"),
        _key(profile={"image": ((1, 1, 32, 32), (1, 1, 64, 64), (1, 1, 256, 256))}),
        _key(trt_version="10.14.1"),
        _key(gpu_name="NVIDIA H100"),
        _key(compute_capability="9.0"),
        _key(builder={"workspace_mib": 2048}),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_engine_file_names_are_safe_and_carry_the_key():
    name = C.engine_file_name("my model/v2", "fp16", "ab" * 32)
    assert name == "my_model_v2-fp16-" + ("ab" * 12) + ".engine"
    assert os.sep not in name


# --------------------------------------------------------------------------- cache files
def test_write_atomic_replaces_whole_files_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "e.engine"
    C.write_atomic(target, b"first")
    C.write_atomic(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["e.engine"]


def test_write_atomic_never_leaves_a_half_file_when_the_rename_fails(tmp_path, monkeypatch):
    target = tmp_path / "e.engine"
    C.write_atomic(target, b"old engine")

    def crash(src, dst):
        raise OSError("disk vanished")

    monkeypatch.setattr(C.os, "replace", crash)
    with pytest.raises(OSError, match="disk vanished"):
        C.write_atomic(target, b"new engine that never lands")
    assert target.read_bytes() == b"old engine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.engine"]


def test_cache_round_trip_and_miss(tmp_path):
    cache = C.EngineCache.open(tmp_path / "engines")
    key = _key()
    assert cache.get("dn", "fp16", key) is None
    path = cache.put("dn", "fp16", key, b"\x00engine")
    assert path.parent == tmp_path / "engines"
    assert cache.get("dn", "fp16", key) == b"\x00engine"
    assert cache.get("dn", "fp16", _key(precision="fp32")) is None
    assert list(cache.entries()) == [path]
    assert cache.timing_cache_path == tmp_path / "engines" / "timing.cache"


def test_unwritable_cache_folder_falls_back_to_a_temp_folder(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(C.tempfile, "tempdir", str(tmp_path / "tmp"))
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    with caplog.at_level(logging.WARNING, logger=C.log.name):
        folder = C.usable_cache_dir(blocker / "engines")
    assert folder == C.fallback_cache_dir() and str(folder).startswith(str(tmp_path / "tmp"))
    assert "not writable" in caplog.text and str(blocker / "engines") in caplog.text
    C.EngineCache(folder).put("m", "fp16", _key(), b"x")  # the fallback really is writable
    if os.geteuid() != 0:  # root ignores permission bits
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            assert C.usable_cache_dir(ro) == C.fallback_cache_dir()
        finally:
            ro.chmod(0o700)


def test_default_cache_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(C.CACHE_ENV, str(tmp_path / "c"))
    assert C.default_cache_dir() == tmp_path / "c" / "engines"
    monkeypatch.delenv(C.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert C.default_cache_dir() == tmp_path / "x" / "edgerestore" / "engines"
    assert C.usable_cache_dir() == tmp_path / "x" / "edgerestore" / "engines"


# --------------------------------------------------------------------------- profiles
def _denoiser_spec(**overrides):
    model = tm.affine_denoiser()
    return tm.spec_for(model, **overrides)


def test_profile_from_metadata_is_rounded_to_the_size_multiple():
    spec = _denoiser_spec(size_multiple=8,
                          profile={"min": (30, 30), "opt": (720, 1280), "max": (1080, 1920)})
    prof = PR.profile_from_spec(spec)
    assert prof["image"] == ((1, 1, 32, 32), (1, 1, 720, 1280), (1, 1, 1080, 1920))
    assert prof["sigma_map"] == prof["image"]  # noise map: 1 channel, same size
    colour = tm.spec_for(tm.box_blur(channels=3), tile_size=256)
    assert PR.profile_from_spec(colour)["image"] == ((1, 3, 32, 32), (1, 3, 256, 256), (1, 3, 256, 256))
    plain = tm.spec_for(tm.box_blur())
    lo, opt, hi = PR.profile_from_spec(plain)["image"]
    assert (lo[2:], opt[2:], hi[2:]) == (PR.DEFAULT_PROFILE["min"], PR.DEFAULT_PROFILE["opt"],
                                          PR.DEFAULT_PROFILE["max"])
    assert PR.shape_in_profile((1, 1, 100, 100), prof["image"])
    assert not PR.shape_in_profile((1, 1, 2000, 100), prof["image"])
    bad = replace(spec, profile={"min": (64, 64), "opt": (32, 32), "max": (128, 128)})
    with pytest.raises(ModelError, match="min <= opt <= max"):
        PR.profile_from_spec(bad)


# --------------------------------------------------------------------------- precision
def test_network_mode_follows_what_the_onnx_holds():
    assert P.network_mode("fp32", "fp32") == P.NetworkMode(True)
    assert P.network_mode("fp16", "fp32") == P.NetworkMode(False, ("FP16",))
    assert P.network_mode("fp16", "fp16") == P.NetworkMode(True)
    assert P.network_mode("int8", "qdq") == P.NetworkMode(True)
    assert P.network_mode("best", "qdq") == P.NetworkMode(False, ("INT8", "FP16"))
    with pytest.raises(InputError, match="--target tensorrt"):
        P.network_mode("int8", "fp32")
    with pytest.raises(InputError, match="INT8 \\(Q/DQ\\) model"):
        P.network_mode("fp16", "qdq")
    with pytest.raises(InputError, match="precision must be one of"):
        P.network_mode("tf32", "fp32")


def test_zero_points_tell_a_cpu_int8_model_from_a_tensorrt_one(tmp_path):
    from edgerestore.calibration.quantize import Int8Settings, quantize_int8
    from tests.calibration.convnets import conv_denoiser

    rng = np.random.default_rng(0)
    feeds = [{"image": rng.random((1, 1, 16, 16), dtype=np.float32),
              "sigma_map": np.full((1, 1, 16, 16), 0.1, np.float32)} for _ in range(3)]
    fp32 = conv_denoiser()
    cpu = quantize_int8(fp32, feeds, Int8Settings(target="cpu"))
    trt = quantize_int8(fp32, feeds, Int8Settings(target="tensorrt"))
    assert (onnx_graph.onnx_kind(fp32), onnx_graph.onnx_kind(cpu), onnx_graph.onnx_kind(trt)) == ("fp32", "qdq", "qdq")
    assert onnx_graph.nonzero_zero_points(cpu) and onnx_graph.nonzero_zero_points(trt) == []


# --------------------------------------------------------------------------- without TensorRT
@pytest.mark.skipif(HAVE_TRT, reason="tensorrt is installed here")
def test_probe_names_the_extra_and_auto_falls_back_saying_why():
    why = probe()
    assert why and "tensorrt" in why and "pip install 'edgerestore[gpu]'" in why
    assert BACKENDS["tensorrt"].probe() == why
    sel = select_backend("auto")
    assert sel.backend.name != "tensorrt"
    assert f"skipped tensorrt ({why})" in sel.reason
    with pytest.raises(BackendError, match="Requested backend 'tensorrt' cannot run here: the tensorrt"):
        select_backend("tensorrt")


@pytest.mark.skipif(HAVE_TRT, reason="tensorrt is installed here")
def test_auto_runs_a_model_on_another_backend(tmp_path):
    path = tm.save(tm.box_blur(), tmp_path / "b.onnx")
    runner, reason = open_runner(str(path))
    with runner:
        assert runner.name in ("ort-cpu", "ort-cuda")
        assert "skipped tensorrt" in reason


@pytest.mark.skipif(HAVE_TRT, reason="tensorrt is installed here")
def test_loader_and_runner_without_tensorrt_raise_the_install_hint(tmp_path):
    path = tm.save(tm.box_blur(), tmp_path / "b.onnx")
    loader = EngineBytesFromOnnx(path=str(path), cache_dir=str(tmp_path / "c"))
    with pytest.raises(MissingDependencyError, match=r"pip install 'edgerestore\[gpu\]'"):
        loader()
    with pytest.raises(MissingDependencyError, match="the TensorRT backend needs"):
        TensorRTRunner(loader).activate()


@pytest.mark.skipif(HAVE_TRT, reason="tensorrt is installed here")
def test_build_engine_cli_without_tensorrt_fails_clearly_and_writes_nothing(tmp_path, capsys):
    path = tm.save(tm.box_blur(), tmp_path / "b.onnx")
    out = tmp_path / "b.engine"
    assert main(["build-engine", str(path), "--precision", "fp16", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "build-engine needs TensorRT and an NVIDIA GPU" in err
    assert "pip install 'edgerestore[gpu]'" in err
    assert not out.exists()
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not onnx" * 20)
    assert main(["build-engine", str(junk), "-o", str(out)]) == 1
    assert "not an ONNX model" in capsys.readouterr().err  # the model is checked first


# --------------------------------------------------------------------------- real TensorRT
@pytest.fixture
def conv_path(tmp_path):
    from tests.calibration.convnets import conv_denoiser

    model = conv_denoiser()
    return tm.save(model, tmp_path / "conv.onnx", tm.spec_for(
        model, name="conv", profile={"min": (16, 16), "opt": (64, 64), "max": (256, 256)}))


def _feed(h=48, w=64, seed=0):
    rng = np.random.default_rng(seed)
    return {"image": rng.random((1, 1, h, w), dtype=np.float32),
            "sigma_map": np.full((1, 1, h, w), 25 / 255, np.float32)}


def _ort(path, feed):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed)[0]


@pytest.mark.tensorrt
@pytest.mark.parametrize("precision,atol", [("fp32", 1e-4), ("fp16", 5e-3)])
def test_tensorrt_engine_matches_onnx_runtime_and_is_cached(conv_path, tmp_path, precision, atol):
    import time

    cache = tmp_path / "cache"
    loader = EngineBytesFromOnnx(path=str(conv_path), precision=precision, cache_dir=str(cache))
    t0 = time.perf_counter()
    with TensorRTRunner(loader) as runner:
        build_s = time.perf_counter() - t0
        for h, w in ((48, 64), (16, 16), (256, 200)):
            feed = _feed(h, w)
            np.testing.assert_allclose(runner.infer(feed), _ort(conv_path, feed), atol=atol, rtol=0)
        with pytest.raises(InputError, match="outside the engine's optimisation profile"):
            runner.infer(_feed(512, 64))
    engines = list(C.EngineCache(cache).entries())
    assert len(engines) == 1 and (cache / "timing.cache").is_file()
    t0 = time.perf_counter()
    assert loader() == engines[0].read_bytes()  # a cache hit: no rebuild
    assert time.perf_counter() - t0 < build_s


@pytest.mark.tensorrt
def test_tensorrt_int8_engine_from_a_tensorrt_target_model(conv_path, tmp_path):
    from edgerestore.calibration.convert import CalibrationJob, calibrate
    from edgerestore.calibration.quantize import Int8Settings
    from edgerestore.calibration.samples import synthetic_frames
    from tests.calibration.conftest import write_frames

    frames = write_frames(tmp_path / "f", synthetic_frames(8, size=(64, 64)))
    q = tmp_path / "conv-trt-int8.onnx"
    calibrate(CalibrationJob(model=str(conv_path), output=str(q), frames=str(frames), count=8,
                             int8=Int8Settings(target="tensorrt")))
    assert read_spec(q).precision == "int8"
    feed = _feed()
    loader = EngineBytesFromOnnx(path=str(q), cache_dir=str(tmp_path / "c"))
    with TensorRTRunner(loader) as runner:
        np.testing.assert_allclose(runner.infer(feed), _ort(q, feed), atol=0.03, rtol=0)


@pytest.mark.tensorrt
def test_auto_picks_tensorrt_when_it_can_run(conv_path, monkeypatch, tmp_path):
    monkeypatch.setenv(C.CACHE_ENV, str(tmp_path))
    runner, reason = open_runner(str(conv_path))
    with runner:
        assert runner.name == "tensorrt" and reason == "auto picked tensorrt"
