"""VGG19 features (eq. (5)) against torchvision's network, and getting the ImageNet weights.

The download is tested against a real HTTP server on 127.0.0.1 that serves a
small state dict in torchvision's format (the first two convolutions of VGG19,
enough for ``conv1_2``), named as torchvision names its files:
``vgg19-<first 8 hex digits of its SHA-256>.pth``. No test touches the internet.
"""

from __future__ import annotations

import functools
import hashlib
import io
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
import torchvision

from srgan_lib import trainer, vgg
from srgan_lib.errors import ConfigError, DownloadError, UserError


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """Each test starts as a new process would: no download failure remembered (vgg._UNAVAILABLE)."""
    vgg._UNAVAILABLE.clear()
    yield
    vgg._UNAVAILABLE.clear()

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def tv_vgg19():
    """torchvision's VGG19 with seeded random weights (built once: its 144M-parameter init is slow)."""
    torch.manual_seed(0)
    return torchvision.models.vgg19(weights=None).eval()


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """An empty torch hub cache under tmp_path; returns the checkpoints folder."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


@pytest.fixture
def offline(monkeypatch, hub):
    """No network: every download fails as it does without DNS; returns the URLs asked for."""
    calls = []

    def fail(url, part, **kwargs):
        calls.append(url)
        raise DownloadError(f"{url}: cannot resolve the host (simulated); check the network, or {kwargs['hint']}")

    monkeypatch.setattr(vgg, "fetch", fail)
    return calls


@pytest.fixture
def server(tmp_path):
    """A real HTTP server on 127.0.0.1 serving the files of ``tmp_path/served``; yields (base URL, folder, paths).

    Each answer waits 0.2 s, so that two clients asking at once overlap.
    """
    folder = tmp_path / "served"
    folder.mkdir()
    requests = []

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server API
            requests.append(self.path)
            time.sleep(0.2)
            super().do_GET()

        def log_message(self, fmt, *args):  # quiet
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", folder, requests
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def small_state(tv_vgg19):
    """``features.0`` and ``features.2`` of torchvision's state dict, and that file's bytes."""
    state = {k: v.clone() for k, v in tv_vgg19.state_dict().items()
             if k.startswith("features.") and int(k.split(".")[1]) <= vgg.vgg19_layer_index("conv1_2")}
    buf = io.BytesIO()
    torch.save(state, buf)
    return state, buf.getvalue()


def _serve(server, monkeypatch, data: bytes, name: str | None = None) -> str:
    """Put ``data`` on the server under torchvision's kind of name and point VGG19_URL at it."""
    base, folder, _ = server
    name = name or f"vgg19-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    (folder / name).write_bytes(data)
    monkeypatch.setattr(vgg, "VGG19_URL", f"{base}/{name}")
    return name


# --- the network ---------------------------------------------------------------

def test_layer_indices_follow_torchvision(tv_vgg19):
    assert vgg.vgg19_layer_index("conv2_2") == 8
    assert vgg.vgg19_layer_index("conv5_4") == 35
    assert len(vgg.vgg19_layer_names()) == 16
    for name in vgg.vgg19_layer_names():
        i, j = (int(c) for c in name[4:].split("_"))
        idx = vgg.vgg19_layer_index(name)
        head = tv_vgg19.features[: idx + 1]
        assert isinstance(head[-1], torch.nn.ReLU) and isinstance(head[-2], torch.nn.Conv2d)
        assert sum(isinstance(m, torch.nn.MaxPool2d) for m in head) == i - 1
        convs_in_block = sum(isinstance(m, torch.nn.Conv2d) for m in head) - sum((2, 2, 4, 4, 4)[: i - 1])
        assert convs_in_block == j


def test_url_and_normalisation_are_torchvisions():
    assert vgg.VGG19_URL == "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
    transforms = torchvision.models.VGG19_Weights.IMAGENET1K_V1.transforms()
    assert vgg.IMAGENET_MEAN == tuple(transforms.mean) and vgg.IMAGENET_STD == tuple(transforms.std)


@pytest.mark.equality
@pytest.mark.parametrize("layer", ["conv2_2", "conv5_4"])
def test_extractor_matches_torchvision_features(tv_vgg19, layer):
    ours = vgg.VGGFeatureExtractor(layer, weights="random")
    idx = vgg.vgg19_layer_index(layer)
    state = {k: v for k, v in tv_vgg19.state_dict().items()
             if k.startswith("features.") and int(k.split(".")[1]) <= idx}
    ours.load_state_dict(state)  # strict: torchvision's keys, features.N.weight
    assert len(ours.features) == idx + 1  # built only up to the chosen layer
    img = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        expected = tv_vgg19.features[: idx + 1]((img - MEAN) / STD)
        torch.testing.assert_close(ours(img), expected)


def test_random_weights_are_seeded_frozen_and_in_the_default_dtype():
    a = vgg.VGGFeatureExtractor("conv2_2", weights="random")
    b = vgg.VGGFeatureExtractor("conv2_2", weights="random")
    c = vgg.VGGFeatureExtractor("conv2_2", weights="random", seed=1)
    assert a.weights_used == "random"
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb) and not pa.requires_grad and pa.dtype == torch.float32
    assert not torch.equal(a.features[0].weight, c.features[0].weight)
    # torchvision's init: Kaiming normal (fan_out), zero bias
    w = a.features[7].weight
    assert w.std().item() == pytest.approx((2 / (128 * 9)) ** 0.5, rel=0.02) and a.features[7].bias.abs().max() == 0
    a.train()
    assert not a.training
    with trainer.default_dtype(torch.float64):
        assert all(p.dtype == torch.float64 for p in vgg.VGGFeatureExtractor("conv1_2", weights="random").parameters())


def test_unknown_layer_or_weights_is_a_user_error():
    with pytest.raises(ConfigError, match="conv5_4"):
        vgg.VGGFeatureExtractor("conv6_1", weights="random")
    with pytest.raises(ConfigError, match="imagenet"):
        vgg.VGGFeatureExtractor("conv1_2", weights="pretrained")


# --- the ImageNet weights --------------------------------------------------------

def test_weights_placed_in_the_hub_cache_are_loaded(tv_vgg19, offline, hub):
    path = vgg.vgg19_weights_path()
    assert path == hub / "vgg19-dcbb9e9d.pth"
    path.parent.mkdir(parents=True)
    torch.save(tv_vgg19.state_dict(), path)
    ext = vgg.VGGFeatureExtractor("conv2_2", weights="imagenet")
    assert ext.weights_used == "imagenet"
    assert offline == []  # found in the cache: no download tried
    torch.testing.assert_close(ext.features[7].weight, tv_vgg19.features[7].weight, rtol=0, atol=0)


def test_failed_download_stops_the_paper_profile(offline):
    with pytest.raises(DownloadError) as info:
        vgg.VGGFeatureExtractor("conv2_2", weights="imagenet")
    msg = str(info.value)
    assert str(vgg.vgg19_weights_path()) in msg and vgg.VGG19_URL in msg and "\n" not in msg
    assert isinstance(info.value, UserError)
    assert offline == [vgg.VGG19_URL]


def test_failed_download_warns_and_falls_back_in_auto(offline, caplog):
    with caplog.at_level("WARNING", logger="srgan_lib.vgg"):
        ext = vgg.VGGFeatureExtractor("conv1_2", weights="auto")
    assert ext.weights_used == "random"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "RANDOM VGG19 weights" in warnings[0]
    assert str(vgg.vgg19_weights_path()) in warnings[0]
    # the same random weights as asked for on purpose
    assert torch.equal(ext.features[2].weight, vgg.VGGFeatureExtractor("conv1_2", weights="random").features[2].weight)


def test_unreadable_file_in_the_cache_is_named(hub, offline):
    hub.mkdir(parents=True)
    vgg.vgg19_weights_path().write_bytes(b"not a state dict")
    with pytest.raises(DownloadError, match="could not be read as a state dict"):
        vgg.VGGFeatureExtractor("conv1_2", weights="imagenet")
    assert offline == []


def test_download_from_a_server_lands_in_the_hub_cache(server, hub, monkeypatch, small_state):
    state, data = small_state
    name = _serve(server, monkeypatch, data)
    _, _, requests = server
    path = vgg.vgg19_weights_path()
    assert path == hub / name and not path.exists()
    ext = vgg.VGGFeatureExtractor("conv1_2", weights="imagenet")
    assert ext.weights_used == "imagenet"
    assert path.read_bytes() == data and not path.with_name(name + ".part").exists()
    for key, value in state.items():
        assert torch.equal(ext.state_dict()[key], value), key
    assert requests == [f"/{name}"]
    vgg.VGGFeatureExtractor("conv1_2", weights="imagenet")  # the second time from the cache
    assert requests == [f"/{name}"]


def test_processes_of_one_run_download_once(server, hub, monkeypatch, small_state):
    """Two extractors built at once (as by the ranks of a distributed run) fetch the file once."""
    name = _serve(server, monkeypatch, small_state[1])
    start = threading.Barrier(2)
    built = []

    def build():
        start.wait()
        built.append(vgg.VGGFeatureExtractor("conv1_2", weights="imagenet").weights_used)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert built == ["imagenet", "imagenet"] and server[2] == [f"/{name}"]


def test_download_with_the_wrong_hash_is_deleted(server, hub, monkeypatch, small_state):
    _serve(server, monkeypatch, small_state[1], name="vgg19-00000000.pth")
    with pytest.raises(DownloadError, match="SHA-256") as info:
        vgg.VGGFeatureExtractor("conv1_2", weights="imagenet")
    assert str(vgg.vgg19_weights_path()) in str(info.value)
    path = vgg.vgg19_weights_path()
    assert not path.exists() and not path.with_name(path.name + ".part").exists()


def test_missing_file_on_the_server_falls_back_in_auto(server, hub, monkeypatch, caplog):
    base, _, requests = server
    monkeypatch.setattr(vgg, "VGG19_URL", f"{base}/vgg19-dcbb9e9d.pth")  # the server does not have it
    with caplog.at_level("WARNING", logger="srgan_lib.vgg"):
        ext = vgg.VGGFeatureExtractor("conv1_2", weights="auto")
    assert ext.weights_used == "random" and requests == ["/vgg19-dcbb9e9d.pth"]  # a 404 is not retried
    assert any("HTTP 404" in r.getMessage() and "RANDOM" in r.getMessage() for r in caplog.records)
    assert not vgg.vgg19_weights_path().exists()


def test_a_failed_download_is_not_tried_again_for_every_network(server, hub, monkeypatch, caplog):
    # an experiment builds dozens of networks: the first failure is remembered (and warned about once),
    # every later network still records its fallback as "random"
    base, _, requests = server
    monkeypatch.setattr(vgg, "VGG19_URL", f"{base}/vgg19-dcbb9e9d.pth")
    with caplog.at_level("INFO", logger="srgan_lib.vgg"):
        first = vgg.VGGFeatureExtractor("conv1_2", weights="auto")
        second = vgg.VGGFeatureExtractor("conv1_2", weights="auto")
    assert first.weights_used == second.weights_used == "random"
    assert requests == ["/vgg19-dcbb9e9d.pth"]  # one attempt, not two
    assert sum(r.levelname == "WARNING" for r in caplog.records) == 1  # the second network: a debug line
    with pytest.raises(DownloadError, match="HTTP 404"):  # "imagenet" still stops, naming the reason
        vgg.VGGFeatureExtractor("conv1_2", weights="imagenet")
