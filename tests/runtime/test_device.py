"""The device logic (issue 25), tested on the CPU with mocked accelerators: which device ``--device`` resolves
to and the errors when it cannot, the speed plan per device, ``--device cpu`` training exactly as before,
checkpoints from a GPU run loading on the CPU, every model-running command's ``--device``, out of GPU memory,
and the GPU benchmark's script at a few steps. Tests marked ``gpu`` need a CUDA device and skip without one
(``benchmarks/gpu_check.sh`` runs them on a GPU machine)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from cnnlab.cli.app import main
from cnnlab.core.errors import ConfigError, TrainingError
from cnnlab.core.rundir import RunDir, load_checkpoint, save_checkpoint
from cnnlab.data.loader import TensorLoader
from cnnlab.runtime.device import Accelerators, choose_device, placed_on, resolve_device, to_device, using_device
from cnnlab.runtime.inference import fast_inference
from cnnlab.runtime.precision import plan_speed
from cnnlab.train.callbacks import Checkpointer
from cnnlab.train.config import TrainConfig
from cnnlab.train.distributed import World, rank_device
from cnnlab.train.trainer import Trainer

H100 = Accelerators(cuda_built=True, cuda_names=("NVIDIA H100",), cuda_bf16=(True,))
T4 = Accelerators(cuda_built=True, cuda_names=("Tesla T4",), cuda_bf16=(False,))
TWO = Accelerators(cuda_built=True, cuda_names=("Tesla T4", "NVIDIA A100"), cuda_bf16=(False, True))
NO_GPU_VISIBLE = Accelerators(cuda_built=True)
MAC = Accelerators(mps_built=True, mps=True)
CPU_ONLY = Accelerators()
EXACT = {"precision": "fp32", "fast_dropout": False}  # fp32 on the CPU: deterministic as it is
has_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


# ----- resolving --device -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("request_", "caps", "expected"),
    [
        ("auto", H100, "cuda:0"),
        ("auto", TWO, "cuda:0"),
        ("auto", MAC, "mps"),
        ("auto", CPU_ONLY, "cpu"),
        ("auto", NO_GPU_VISIBLE, "cpu"),
        ("cuda", H100, "cuda:0"),
        ("cuda:1", TWO, "cuda:1"),
        ("CUDA:1", TWO, "cuda:1"),
        ("mps", MAC, "mps"),
        ("cpu", H100, "cpu"),
    ],
)
def test_resolve_device_picks_cuda_then_mps_then_cpu(request_, caps, expected):
    assert resolve_device(request_, caps) == torch.device(expected)


@pytest.mark.parametrize(
    ("request_", "caps", "message", "fix"),
    [
        ("cuda", CPU_ONLY, "cuda requested, but this torch build has no CUDA", "install a CUDA build of torch"),
        ("cuda:0", CPU_ONLY, "cuda:0 requested, but this torch build has no CUDA", "use --device cpu"),
        ("cuda", NO_GPU_VISIBLE, "cuda requested, but this torch build has CUDA and no GPU is visible", "nvidia-smi"),
        ("cuda:3", H100, "cuda:3 requested, but there is 1 GPU (cuda:0)", "--device cuda:0"),
        ("cuda:2", TWO, "cuda:2 requested, but there are 2 GPUs (cuda:0 to cuda:1)", "--device cuda:1"),
        ("mps", CPU_ONLY, "mps requested, but this torch build has no MPS", "--device cpu"),
        ("mps", Accelerators(mps_built=True), "mps requested, but MPS is not available here", "macOS 12.3"),
        ("gpu", H100, "unknown device 'gpu'", "auto, cpu, cuda, cuda:N, mps"),
        ("cpu:1", H100, "unknown device 'cpu:1'", "auto, cpu"),
    ],
)
def test_an_absent_device_is_a_config_error_that_says_why(request_, caps, message, fix):
    with pytest.raises(ConfigError) as raised:
        resolve_device(request_, caps)
    assert raised.value.what == message and raised.value.where == "--device" and fix in raised.value.fix


@pytest.mark.skipif(torch.cuda.is_available() or torch.backends.mps.is_available(), reason="this machine has a GPU")
def test_auto_picks_the_cpu_on_a_machine_without_gpu():
    choice = choose_device("auto")
    assert choice.device == torch.device("cpu") and "no CUDA GPU and no MPS" in choice.reason
    assert Trainer(nn.Linear(2, 2), TrainConfig()).device == torch.device("cpu")


def test_a_config_keeps_any_device_it_names_and_rejects_misspelt_ones():
    # A run trained on a GPU machine names cuda in its config.yaml; the config still loads anywhere.
    assert TrainConfig(device="cuda:1").device == "cuda:1" and TrainConfig().device == "auto"
    with pytest.raises(ConfigError, match="unknown device 'cuda1'"):
        TrainConfig(device="cuda1")


# ----- the speed plan per device ------------------------------------------------------------------------------
def test_cuda_with_native_bf16_plans_bf16_channels_last_benchmark_tf32():
    plan = plan_speed("auto", device="cuda", caps=H100)
    assert (plan.device, plan.device_type, plan.autocast_dtype) == ("cuda:0", "cuda", torch.bfloat16)
    assert plan.bf16 and not plan.fp16 and not plan.grad_scaler
    assert plan.channels_last and plan.cudnn_benchmark and plan.tf32 and plan.pin_memory
    assert not plan.fast_dropout  # the counter-hash masks are CPU tensors and a CPU speed-up
    text = " | ".join(plan.reasons)
    assert plan.reasons[0].startswith("device cuda:0 (NVIDIA H100)") and "H100 computes bf16 natively" in text
    for word in ("channels_last", "cudnn.benchmark", "TF32", "pinned", "torch's dropout", "torch.compile"):
        assert word in text, word


def test_cuda_without_bf16_plans_fp16_with_a_grad_scaler():
    plan = plan_speed("auto", device="cuda", caps=T4)
    assert plan.fp16 and plan.grad_scaler and not plan.bf16 and plan.autocast_dtype == torch.float16
    assert "fp16 autocast + GradScaler: Tesla T4 has no native bf16" in plan.reasons[1]
    on_a100 = plan_speed("auto", device="cuda:1", caps=TWO)  # the chosen GPU's capability counts
    assert on_a100.device == "cuda:1" and on_a100.bf16 and "A100" in on_a100.reasons[0]


def test_cuda_precision_and_determinism_when_asked():
    fp32 = plan_speed("fp32", device="cuda", caps=H100)
    assert not fp32.mixed and not fp32.tf32 and fp32.autocast_dtype == torch.float32 and "TF32 off" in fp32.reasons[1]
    assert not any(r.startswith("TF32 for") for r in fp32.reasons)
    assert plan_speed("fp16", device="cuda", caps=H100).grad_scaler
    assert "slow" in plan_speed("bf16", device="cuda", caps=T4).reasons[1]
    assert not plan_speed("auto", device="cuda", caps=H100, deterministic=True).cudnn_benchmark
    assert plan_speed("auto", device="cuda", caps=H100, compile=True).compile


def test_mps_plans_fp32_unless_asked():
    plan = plan_speed("auto", device="mps", caps=MAC)
    assert plan.device == "mps" and not plan.mixed and not plan.channels_last and not plan.fast_dropout
    fp16 = plan_speed("fp16", device="mps", caps=MAC)
    assert fp16.fp16 and not fp16.grad_scaler and fp16.autocast_dtype == torch.float16


def test_the_cpu_plan_is_todays_with_the_device_named_first():
    for flags in ({"avx2"}, {"avx512_bf16"}):
        for precision in ("auto", "fp32", "bf16"):
            plain = plan_speed(precision, flags=flags)
            auto = plan_speed(precision, flags=flags, device="auto", caps=CPU_ONLY)
            assert plain.device == auto.device == "cpu" and plain.reasons[1:] == auto.reasons[1:]
            assert (plain.bf16, plain.channels_last, plain.fast_dropout) == (auto.bf16, auto.channels_last, True)
            assert not (plain.fp16 or plain.grad_scaler or plain.cudnn_benchmark or plain.tf32 or plain.pin_memory)
            assert plain.bf16 == (precision == "bf16" or (precision == "auto" and "avx512_bf16" in flags))
    assert plan_speed(flags=set()).reasons[0] == "device cpu: asked for"
    assert plan_speed(device="auto", caps=CPU_ONLY).reasons[0] == "device cpu: auto found no CUDA GPU and no MPS"
    with pytest.raises(ConfigError, match="fp16 autocast is for GPUs"):
        plan_speed("fp16")
    with pytest.raises(ConfigError, match="unknown precision 'fp8'"):
        plan_speed("fp8")


# ----- distributed: one process per GPU -----------------------------------------------------------------------
def test_each_rank_takes_its_own_gpu_and_cpu_ranks_stay_on_the_cpu():
    assert rank_device("auto", World(rank=3, local_rank=1, size=4), TWO).device == torch.device("cuda", 1)
    assert rank_device("cuda", World(0, 0, 2), TWO).device == torch.device("cuda", 0)
    assert rank_device("auto", World(1, 1, 2), CPU_ONLY).device == torch.device("cpu")
    assert rank_device("auto", World(1, 1, 2), MAC).device == torch.device("cpu")  # no distributed MPS
    assert rank_device("cuda:1", World(0, 0, 1), TWO).device == torch.device("cuda", 1)
    with pytest.raises(ConfigError, match="local rank 1 has no GPU: this machine has 1"):
        rank_device("auto", World(1, 1, 2), H100)
    with pytest.raises(ConfigError, match="names one GPU"):
        rank_device("cuda:1", World(0, 0, 2), TWO)
    with pytest.raises(ConfigError, match="not on MPS"):
        rank_device("mps", World(0, 0, 2), MAC)


# ----- moving models and batches ------------------------------------------------------------------------------
def test_placed_on_puts_every_tensor_back_and_to_device_walks_containers():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    before = {name: (t.data_ptr(), t.clone()) for name, t in net.state_dict().items()}
    with placed_on(net, torch.device("meta")) as moved:
        assert {t.device.type for t in moved.state_dict().values()} == {"meta"}
    for name, tensor in net.state_dict().items():
        assert tensor.data_ptr() == before[name][0] and torch.equal(tensor, before[name][1]), name
    batch = to_device([torch.ones(2), {"boxes": torch.zeros(1, 5)}, "label"], torch.device("meta"))
    assert batch[0].is_meta and batch[1]["boxes"].is_meta and batch[2] == "label"


def test_fast_inference_runs_on_the_given_device_and_returns_cpu_float32():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    x = torch.randn(7, 3, 8, 8)
    with torch.no_grad():
        expected = net(x)
    with using_device(torch.device("cpu")), fast_inference(net, "fp32", "off") as run:
        out = run(x)
        assert run.describe()["device"] == "cpu"
    assert out.device.type == "cpu" and out.dtype == torch.float32 and torch.equal(out, expected)
    with pytest.raises(ConfigError, match="cuda requested"), fast_inference(net, device="cuda") as run:
        pass  # pragma: no cover - unreachable where CUDA is absent (the gpu tests cover the rest)


# ----- training: --device cpu is today's training, bit for bit --------------------------------------------------
def _data(n: int = 96) -> TensorLoader:
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(n, 1, 8, 8, generator=generator)
    y = (x.mean(dim=(1, 2, 3)) > 0).long()
    return TensorLoader(x, y, batch_size=16, shuffle=True, seed=1)


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.2), nn.Flatten(), nn.Linear(4 * 6 * 6, 2)
    )


def _reference_fit(epochs: int) -> nn.Module:
    """The same training as a plain PyTorch loop: what the Trainer computed before it knew about devices."""
    model = _tiny().to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    data = _data()
    torch.manual_seed(0)  # dropout's masks: the Trainer draws them from the global generator too
    for epoch in range(epochs):
        model.train()
        for x, y in data.batches(epoch):
            loss = loss_fn(model(x.contiguous(memory_format=torch.channels_last)).float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_device_cpu_trains_bit_for_bit_like_a_plain_loop(device):
    if device == "auto" and (torch.cuda.is_available() or torch.backends.mps.is_available()):
        pytest.skip("auto is a GPU here")
    config = TrainConfig(epochs=2, batch_size=16, optimizer="sgd", lr=0.05, schedule="constant", device=device, **EXACT)
    torch.manual_seed(0)
    trainer = Trainer(_tiny(), config)
    torch.manual_seed(0)
    trainer.fit(_data())
    reference = _reference_fit(epochs=2)
    for (name, ours), theirs in zip(trainer.model.state_dict().items(), reference.state_dict().values(), strict=True):
        assert torch.equal(ours, theirs), name
    assert trainer.plan.reasons[0].startswith("device cpu") and trainer.scaler is None


def test_predictions_come_back_on_the_cpu():
    trainer = Trainer(_tiny(), TrainConfig(epochs=1, batch_size=16, device="cpu", **EXACT))
    logits = trainer.predict(_data(40))
    assert logits.device.type == "cpu" and logits.dtype == torch.float32 and logits.shape == (40, 2)


# ----- checkpoints across devices -----------------------------------------------------------------------------
class _FakeScaler:
    """What a GradScaler saves (a real one needs CUDA)."""

    def state_dict(self) -> dict:
        return {
            "scale": 1024.0,
            "growth_factor": 2.0,
            "backoff_factor": 0.5,
            "growth_interval": 2000,
            "_growth_tracker": 3,
        }


def test_a_checkpoint_saved_under_a_cuda_plan_loads_and_resumes_on_the_cpu(tmp_path, monkeypatch):
    config = TrainConfig(epochs=1, batch_size=16, device="cpu", **EXACT)
    trainer = Trainer(_tiny(), config)
    trainer.fit(_data())
    # What the trainer saves on a GPU: its device, the GPU's RNG state and the GradScaler's.
    gpu_rng = torch.arange(816, dtype=torch.uint8)  # torch.cuda.get_rng_state()'s length
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device=None: gpu_rng)
    trainer.device, trainer.scaler = torch.device("cuda", 0), _FakeScaler()
    state = trainer.state_dict()
    assert state["device"] == "cuda:0" and torch.equal(state["cuda_rng"], gpu_rng) and state["grad_scaler"]["scale"]
    save_checkpoint(tmp_path / "last.pt", state)
    monkeypatch.undo()

    loaded = load_checkpoint(tmp_path / "last.pt")
    resumed = Trainer(_tiny(), TrainConfig(epochs=2, batch_size=16, device="cpu", **EXACT))
    torch.manual_seed(123)  # load_state_dict must put the saved CPU RNG state back
    resumed.load_state_dict(loaded)
    assert torch.equal(torch.get_rng_state(), state["torch_rng"]) and resumed.epoch == 1
    for name, tensor in resumed.model.state_dict().items():
        assert torch.equal(tensor, state["model"][name]), name
    resumed.fit(_data())  # the optimiser state and the schedule load too: training goes on
    assert resumed.epoch == 2 and len(resumed.history) == 2


def test_the_cpu_trainer_saves_no_gpu_entries():
    state = Trainer(_tiny(), TrainConfig(device="cpu", **EXACT)).state_dict()
    assert not {"device", "cuda_rng", "mps_rng", "grad_scaler"} & set(state)


# ----- out of GPU memory --------------------------------------------------------------------------------------
class _RunsOutOfMemory(Trainer):
    def __init__(self, *args, fail_at: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fail_at = fail_at

    def train_step(self, batch):
        if self.global_step == self.fail_at:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super().train_step(batch)


def test_out_of_gpu_memory_names_a_batch_size_and_keeps_the_last_checkpoint(tmp_path):
    run = RunDir.create(tmp_path, "classify", "oom")
    steps_per_epoch = len(_data())
    trainer = _RunsOutOfMemory(
        _tiny(),
        TrainConfig(epochs=3, batch_size=16, device="cpu", **EXACT),
        callbacks=[Checkpointer(run, "loss")],
        fail_at=steps_per_epoch + 2,  # in the second epoch
    )
    with pytest.raises(TrainingError) as raised:
        trainer.fit(_data())
    error = raised.value
    assert error.what == "out of GPU memory while training at batch size 16"
    assert "--batch-size 8" in error.fix and "the last checkpoint was kept" in error.fix
    assert isinstance(error.__cause__, torch.OutOfMemoryError) and trainer.stop_reason == "out_of_memory"
    assert load_checkpoint(run.last_checkpoint)["epoch"] == 1  # the first epoch's, untouched


# ----- every command that runs a model takes --device ---------------------------------------------------------
def _folder(root: Path, per_class: int = 8) -> Path:
    """Two classes of 16x16 grey PNGs: a bright bar high or low (learnable in one epoch)."""
    rng = np.random.default_rng(0)
    for k in range(2):
        (root / f"class_{k}").mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 80, (16, 16)).astype(np.uint8)
            pixels[4 + 6 * k : 7 + 6 * k] = 230
            Image.fromarray(pixels).save(root / f"class_{k}" / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("device")
    data = _folder(root / "data")
    args = ["train", "--data", str(data), "--model", "cnn_small", "--epochs", "1", "--batch-size", "4"]
    args += ["--val-fraction", "0.25", "--precision", "fp32", "--seed", "1"]
    assert main([*args, "--runs-dir", str(root / "runs"), "--device", "cpu"]) == 0
    assert main([*args, "--runs-dir", str(root / "default")]) == 0
    run = next((root / "runs" / "classify").iterdir())
    return {"data": data, "run": run, "default": next((root / "default" / "classify").iterdir()), "root": root}


def test_train_with_device_cpu_writes_it_and_matches_the_default(cpu_run):
    run = cpu_run["run"]
    assert "device: cpu" in (run / "config.yaml").read_text()
    assert "device cpu: asked for" in (run / "log.txt").read_text()
    if not (torch.cuda.is_available() or torch.backends.mps.is_available()):  # the default, auto, is the CPU here
        ours, default = (
            load_checkpoint(run / "checkpoints/last.pt"),
            load_checkpoint(cpu_run["default"] / "checkpoints/last.pt"),
        )
        for name, tensor in ours["model"].items():
            assert torch.equal(tensor, default["model"][name]), name
        assert "device cpu: auto found no CUDA GPU and no MPS" in (cpu_run["default"] / "log.txt").read_text()


def test_every_model_command_accepts_device_cpu(cpu_run, tmp_path, monkeypatch, capsys):
    run, data = cpu_run["run"], cpu_run["data"]
    image = str(next((data / "class_1").glob("*.png")))
    assert main(["evaluate", str(run), "--precision", "fp32", "--compile", "off", "--device", "cpu", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["inference"]["device"] == "cpu"
    assert main(["predict", str(run), image, "--json", "--compile", "off", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["top"]
    assert main(["export", str(run), "--out", str(tmp_path / "export"), "--device", "cpu"]) == 0
    assert main(["explain", str(run), image, "--out", str(tmp_path / "cams"), "--device", "cpu"]) == 0
    assert len(list((tmp_path / "cams").glob("*.png"))) == 1
    lr_args = ["lr-find", "--data", str(data), "--model", "cnn_small", "--batch-size", "4", "--steps", "5"]
    assert main([*lr_args, "--out", str(tmp_path / "lr.png"), "--device", "cpu"]) == 0
    import uvicorn

    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)  # load the model, serve nothing
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    assert main(["serve", str(run), "--runtime", "torch", "--port", port, "--device", "cpu"]) == 0
    assert main(["info", "--device", "cpu"]) == 0
    assert "speed plan (cpu)" in capsys.readouterr().out


COMMANDS = {
    "train": ["train", "--data", "nowhere"],
    "lr-find": ["lr-find", "--data", "nowhere"],
    "evaluate": ["evaluate", "nowhere"],
    "predict": ["predict", "nowhere", "x.png"],
    "export": ["export", "nowhere"],
    "serve": ["serve", "nowhere"],
    "explain": ["explain", "nowhere", "x.png", "--out", "cams"],
    "info": ["info"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize(
    ("caps", "message"),
    [
        (CPU_ONLY, "cuda requested, but this torch build has no CUDA [--device]. Fix: install a CUDA build of torch "
         "or use --device cpu"),
        (NO_GPU_VISIBLE, "cuda requested, but this torch build has CUDA and no GPU is visible"),
    ],
    ids=["cpu-build", "no-gpu"],
)  # fmt: skip
def test_every_model_command_rejects_an_absent_cuda_with_exit_2(command, caps, message, monkeypatch, capsys):
    monkeypatch.setattr(Accelerators, "detect", classmethod(lambda cls: caps))
    assert main([*COMMANDS[command], "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_run_config_naming_an_absent_gpu_stops_before_reading_data(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(Accelerators, "detect", classmethod(lambda cls: CPU_ONLY))
    config = tmp_path / "run.yaml"
    config.write_text("train:\n  device: cuda\n")
    assert main(["train", "--config", str(config), "--data", "nowhere", "--runs-dir", str(tmp_path)]) == 2
    assert "cuda requested, but this torch build has no CUDA" in capsys.readouterr().err
    assert not (tmp_path / "classify").exists()
    assert main(["train", "--data", "x", "--device", "gpu0"]) == 2
    assert "unknown device 'gpu0'" in capsys.readouterr().err


# ----- the GPU benchmark, at a few steps on the CPU -----------------------------------------------------------
def test_the_gpu_benchmark_runs_on_the_cpu_at_a_few_steps(tmp_path):
    import importlib.util

    path = Path(__file__).parents[2] / "benchmarks" / "gpu_speed.py"
    spec = importlib.util.spec_from_file_location("gpu_speed", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "gpu_speed.json"
    args = ["--device", "cpu", "--steps", "3", "--warmup", "1", "--batch-size", "8", "--infer-batch", "8"]
    module.main([*args, "--rounds", "1", "--infer-reps", "2", "--out", str(out)])
    report = json.loads(out.read_text())
    assert not report["errors"], report["errors"]
    assert set(report["results"]) == {"plain_fp32", "cnnlab_fit", "eager_fp32", "fast_inference"}
    assert all(r["img_per_s"] > 0 for r in report["results"].values())
    assert report["ratios"]["train cnnlab/plain_fp32"] > 0 and report["machine"]["device"] == "cpu"


# ----- on a CUDA GPU (benchmarks/gpu_check.sh) ----------------------------------------------------------------
@pytest.mark.gpu
@has_cuda
def test_gpu_trains_with_the_plans_autocast_and_resumes_on_the_cpu(tmp_path):
    trainer = Trainer(_tiny(), TrainConfig(epochs=2, batch_size=16, device="cuda"))
    history = trainer.fit(_data())
    assert trainer.device.type == "cuda" and trainer.plan.mixed
    assert {p.device.type for p in trainer.model.parameters()} == {"cuda"}
    assert all(np.isfinite(row["loss"]) for row in history)
    logits = trainer.predict(_data(40))
    assert logits.device.type == "cpu" and logits.dtype == torch.float32
    save_checkpoint(tmp_path / "last.pt", trainer.state_dict())
    state = load_checkpoint(tmp_path / "last.pt")
    assert "cuda_rng" in state and state["device"].startswith("cuda")
    on_cpu = Trainer(_tiny(), TrainConfig(epochs=3, batch_size=16, device="cpu", precision="fp32"))
    on_cpu.load_state_dict(state)
    on_cpu.fit(_data())
    assert on_cpu.epoch == 3
    again = Trainer(_tiny(), TrainConfig(epochs=3, batch_size=16, device="cuda"))
    again.load_state_dict(state)
    assert torch.equal(torch.cuda.get_rng_state(again.device), state["cuda_rng"])


@pytest.mark.gpu
@has_cuda
def test_gpu_fp16_trains_through_the_grad_scaler():
    trainer = Trainer(_tiny(), TrainConfig(epochs=2, batch_size=16, device="cuda", precision="fp16", grad_clip=1.0))
    history = trainer.fit(_data())
    assert trainer.scaler is not None and trainer.plan.autocast_dtype == torch.float16
    assert all(np.isfinite(row["loss"]) for row in history) and "grad_scaler" in trainer.state_dict()


@pytest.mark.gpu
@has_cuda
def test_gpu_fast_inference_matches_the_cpu_within_autocast_error():
    net = _tiny().eval()
    x = torch.randn(300, 1, 8, 8)
    with fast_inference(net, "fp32", "off", device="cpu") as run:
        expected = run(x)
    with fast_inference(net, "fp32", "off", device="cuda") as run:
        exact = run(x)
    with fast_inference(net, "auto", "off", device="cuda") as run:
        mixed = run(x)
        assert run.describe()["device"].startswith("cuda")
    assert exact.device.type == mixed.device.type == "cpu" and mixed.dtype == torch.float32
    assert torch.allclose(exact, expected, atol=1e-4) and torch.allclose(mixed, expected, atol=0.1)
    assert {p.device.type for p in net.parameters()} == {"cpu"}


@pytest.mark.gpu
@has_cuda
def test_gpu_run_evaluates_predicts_explains_and_exports(tmp_path, capsys):
    data = _folder(tmp_path / "data")
    args = ["train", "--data", str(data), "--model", "cnn_small", "--epochs", "2", "--batch-size", "4"]
    assert main([*args, "--val-fraction", "0.25", "--runs-dir", str(tmp_path / "runs"), "--device", "cuda"]) == 0
    run = next((tmp_path / "runs" / "classify").iterdir())
    assert "device cuda:0" in (run / "log.txt").read_text() and "device: cuda" in (run / "config.yaml").read_text()
    image = str(next((data / "class_1").glob("*.png")))
    assert main(["evaluate", str(run), "--device", "cuda", "--compile", "off", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["inference"]["device"].startswith("cuda")
    assert main(["predict", str(run), image, "--device", "cuda", "--compile", "off", "--json"]) == 0
    assert main(["explain", str(run), image, "--out", str(tmp_path / "cams"), "--device", "cuda"]) == 0
    assert main(["export", str(run), "--out", str(tmp_path / "export"), "--format", "onnx"]) == 0
    card = json.loads((tmp_path / "export" / "model.onnx.json").read_text())
    assert card["verification"]["top1_agreement"] == 1.0
    assert (
        main(["train", "--resume", str(run), "--epochs", "3", "--device", "cpu"]) == 0
    )  # a GPU run goes on on the CPU


@pytest.mark.gpu
@has_cuda
def test_gpu_segmentation_trains(tmp_path, capsys):
    rng = np.random.default_rng(1)
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    for i in range(4):
        mask = np.zeros((64, 64), np.uint8)
        mask[10:40, 20:50] = 255
        image = np.clip(rng.normal(90, 20, (64, 64)) + (mask > 0) * 100, 0, 255).astype(np.uint8)
        Image.fromarray(image).save(tmp_path / "images" / f"{i}.png")
        Image.fromarray(mask).save(tmp_path / "masks" / f"{i}.png")
    args = ["train", "--task", "segment", "--data", str(tmp_path / "images"), "--masks", str(tmp_path / "masks")]
    code = main(
        [*args, "--epochs", "1", "--runs-dir", str(tmp_path / "runs"), "--val-fraction", "0.25", "--device", "cuda"]
    )
    assert code == 0, capsys.readouterr().err


@pytest.mark.gpu
@has_cuda
def test_gpu_trains_the_detection_and_embedding_trainers():
    from cnnlab.models import create_model
    from cnnlab.models.embed.head import EmbeddingNet
    from cnnlab.tasks.detect.trainer import DetectionTrainer
    from cnnlab.tasks.embed.sampler import PeopleBatches
    from cnnlab.tasks.embed.trainer import EmbeddingTrainer

    x, y = torch.rand(2, 3, 64, 64), torch.tensor([[[0, 8.0, 8, 40, 30]], [[1, 20.0, 20, 60, 50]]])
    config = TrainConfig(epochs=1, batch_size=2, monitor="val_map50", device="cuda")
    detector = DetectionTrainer(create_model("yolo_tiny", num_classes=2, width=4), config, class_names="ab")
    detector.fit(TensorLoader(x, y, batch_size=2))
    assert {"map50", "loss"} <= set(detector.evaluate(TensorLoader(x, y, batch_size=2)))
    net = EmbeddingNet(create_model("lenet5", num_classes=2, in_chans=1), dim=8)
    faces, people = torch.rand(8, 1, 28, 28), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    embedder = EmbeddingTrainer(net, TrainConfig(epochs=1, monitor="last", device="cuda"))
    embedder.fit(PeopleBatches(faces, people, people=2, images=2))
    assert {"auc", "eer"} <= set(embedder.evaluate(TensorLoader(faces, people, batch_size=4)))
