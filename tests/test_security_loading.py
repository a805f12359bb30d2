"""Issue 13, loading: no file in a model or adapter folder reaches outside it, a model's own
Python code runs only when the user passes --trust-remote-code (whichever plugin loads it,
and from the hub only at a pinned commit), and an adapter is checked against the sha256
its manifest records and against the model it is put on. Each refusal is one line that
names the file. The models are tiny real ones built locally; the adapter is trained one step."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from nlpapp.errors import ModelLoadError, UnsafeModelError
from nlpapp.types import LoadOptions

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _one_line(code, err, exit_code=1):
    assert code == exit_code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nlpapp: error: "), err
    return lines[0]


def _generate(cli, model, *extra):
    return cli("run", "generation", "the weather is", "-m", str(model), "--max-new-tokens", "2", *extra)


# --- 1. files that reach outside the model folder ---------------------------------------------

@pytest.fixture(scope="module")
def sharded_template(tiny_model, tmp_path_factory) -> Path:
    """The tiny Llama saved in three shards with a model.safetensors.index.json."""
    import transformers as tf

    source = tiny_model("causal-lm")
    folder = tmp_path_factory.mktemp("sharded") / "model"
    tf.AutoModelForCausalLM.from_pretrained(source).save_pretrained(folder, max_shard_size="40KB")
    for path in source.iterdir():
        if not path.name.startswith("model") and path.is_file():
            shutil.copy(path, folder / path.name)
    assert (folder / "model.safetensors.index.json").is_file()
    return folder


@pytest.fixture
def sharded(sharded_template, tmp_path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(sharded_template, folder)
    return folder


def _move_last_shard_out(folder: Path, entry_of) -> tuple[str, str]:
    """Moves the last shard to ../outside and points the index at ``entry_of(moved path)``;
    returns (a tensor it holds, the entry)."""
    index_path = folder / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    shard = max(index["weight_map"].values())
    outside = folder.parent / "outside"
    outside.mkdir()
    shutil.move(folder / shard, outside / shard)
    entry = entry_of(outside / shard)
    index["weight_map"] = {k: entry if v == shard else v for k, v in index["weight_map"].items()}
    index_path.write_text(json.dumps(index))
    return next(k for k, v in index["weight_map"].items() if v == entry), entry


@pytest.mark.parametrize("kind", ["relative", "absolute"])
def test_a_shard_index_entry_outside_the_folder_is_refused_in_one_line(cli, sharded, kind):
    key, entry = _move_last_shard_out(sharded, lambda moved: f"../outside/{moved.name}" if kind == "relative"
                                      else str(moved))
    line = _one_line(*_generate(cli, sharded)[::2])
    assert str(sharded / "model.safetensors.index.json") in line
    assert repr(key) in line and repr(entry) in line and "outside the model folder" in line


def test_a_shard_linked_from_outside_the_folder_is_refused(runtime, sharded):
    _, entry = _move_last_shard_out(sharded, lambda moved: moved.name)
    (sharded / entry).symlink_to(sharded.parent / "outside" / entry)
    with pytest.raises(UnsafeModelError) as info:
        runtime.models.load(str(sharded))
    assert str(sharded / entry) in str(info.value) and "outside" in str(info.value)
    assert "\n" not in str(info.value)


def test_a_weights_file_linked_from_outside_is_refused_but_links_into_the_hub_cache_load(runtime, tiny_model,
                                                                                        tmp_path, monkeypatch):
    folder, outside = tmp_path / "linked", tmp_path / "elsewhere"
    shutil.copytree(tiny_model("causal-lm"), folder)
    outside.mkdir()
    shutil.move(folder / "model.safetensors", outside / "model.safetensors")
    (folder / "model.safetensors").symlink_to(outside / "model.safetensors")
    with pytest.raises(UnsafeModelError, match=r"model\.safetensors is a link to .*elsewhere.*outside"):
        runtime.models.load(str(folder))
    # the Hugging Face cache links each snapshot file to the repository's blobs: that is inside
    repo = tmp_path / "hub" / "models--someorg--tiny"
    snapshot, blobs = repo / "snapshots" / COMMIT, repo / "blobs"
    shutil.copytree(tiny_model("causal-lm"), snapshot)
    blobs.mkdir()
    for path in list(snapshot.iterdir()):
        blob = blobs / hashlib.sha256(path.name.encode()).hexdigest()
        shutil.move(path, blob)
        path.symlink_to(Path("../..") / "blobs" / blob.name)
    assert runtime.models.load(str(snapshot)).model_type == "llama"
    # older `hf download --local-dir` linked a plain folder's files to the cache's blobs
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    local_dir = tmp_path / "local-dir"
    local_dir.mkdir()
    for path in snapshot.iterdir():
        (local_dir / path.name).symlink_to(path.resolve())
    assert runtime.models.load(str(local_dir)).model_type == "llama"


def test_a_tokenizer_file_named_outside_the_folder_is_refused(cli, tiny_model, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model("causal-lm"), folder)
    (tmp_path / "outside").mkdir()
    shutil.move(folder / "tokenizer.json", tmp_path / "outside" / "tokenizer.1.0.0.json")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["fast_tokenizer_files"] = ["../outside/tokenizer.1.0.0.json"]
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    line = _one_line(*_generate(cli, folder)[::2])
    assert str(folder / "tokenizer_config.json") in line and "'../outside/tokenizer.1.0.0.json'" in line
    assert "outside the model folder" in line


def test_a_truncated_safetensors_file_is_named_in_one_line(cli, tiny_model, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model("causal-lm"), folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    line = _one_line(*_generate(cli, folder)[::2])
    assert f"{weights} is truncated or corrupt" in line


# --- 2. a model's own code ------------------------------------------------------------------

EVIL = '''
from pathlib import Path
Path({marker!r}).write_text("the model folder's code ran")
from transformers import PretrainedConfig

class EvilConfig(PretrainedConfig):
    model_type = "evil-model"
'''

LOADER = '''
import os
from nlpapp import hookimpl

@hookimpl
def load_model(path, head):
    """A third-party loader that opts in to remote code on the user's behalf."""
    if not os.path.isfile(os.path.join(path, "evil.py")):
        return None
    import transformers
    transformers.AutoConfig.from_pretrained(path, trust_remote_code=True)
    from nlpapp.testing.fake import FakeModel
    return FakeModel("fake-causal", head or "causal-lm")
'''


@pytest.fixture
def evil_folder(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """A model folder whose config.json maps AutoConfig to evil.py, which writes a marker
    file when imported; transformers' module cache is a scratch folder for the test."""
    import transformers.dynamic_module_utils as dynamic

    folder, marker = tmp_path / "evil-model", tmp_path / "marker"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "evil-model",
                                                    "auto_map": {"AutoConfig": "evil.EvilConfig"}}))
    (folder / "evil.py").write_text(EVIL.format(marker=str(marker)))
    monkeypatch.setattr(dynamic, "HF_MODULES_CACHE", str(tmp_path / "modules"))
    return folder, marker


def test_a_plugin_cannot_run_a_model_folders_code_without_the_user_flag(cli, register_plugin, evil_folder):
    folder, marker = evil_folder
    register_plugin("remote-loader", LOADER)
    line = _one_line(*_generate(cli, folder)[::2])
    assert not marker.exists()
    assert str(folder) in line and "evil.py" in line and "--trust-remote-code" in line
    code, _, err = _generate(cli, folder, "--trust-remote-code")  # the user's own flag opts in
    assert code == 0, err
    assert marker.read_text() == "the model folder's code ran"


CUSTOM_GENERATE = '''
from pathlib import Path
Path({marker!r}).write_text("the model folder's generate code ran")

def generate(model, *args, **kwargs):
    return model.generate(*args, **kwargs)
'''


def test_generate_kwargs_cannot_run_a_folders_custom_generate_code_without_the_user_flag(runtime, tiny_model,
                                                                                         evil_folder):
    """A task's generate() kwargs (GenerationParams.extra) asking for transformers'
    custom_generate with trust_remote_code=True: refused unless the model was loaded with it."""
    from nlpapp.types import GenerationParams

    folder, marker = evil_folder
    (folder / "custom_generate").mkdir()
    (folder / "custom_generate" / "generate.py").write_text(CUSTOM_GENERATE.format(marker=str(marker)))
    model = runtime.models.load(str(tiny_model("causal-lm")))
    params = GenerationParams(max_new_tokens=2, extra={"custom_generate": str(folder), "trust_remote_code": True})
    with pytest.raises(UnsafeModelError, match=r"custom_generate/generate\.py.*--trust-remote-code"):
        model.generate(["the weather is"], params, chat=False)
    assert not marker.exists()


def test_code_from_another_hub_repository_needs_a_pinned_commit(isolated_runtime, evil_folder):
    """A local folder's auto_map may name code in a hub repository ("org/repo--module.Class"):
    with --trust-remote-code it runs only at a commit, never at a moving branch."""
    from nlpapp.api import Runtime

    folder, marker = evil_folder
    (folder / "config.json").write_text(json.dumps({"model_type": "evil-model",
                                                    "auto_map": {"AutoConfig": "someorg/code--evil.EvilConfig"}}))
    plugins = isolated_runtime().plugins
    with pytest.raises(UnsafeModelError, match=r"hub repository someorg/code .*'main'.*--revision COMMIT"):
        Runtime(plugins, LoadOptions(trust_remote_code=True)).models.load(str(folder))
    assert not marker.exists()


def test_trust_remote_code_with_a_hub_id_needs_a_pinned_revision(cli, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for given in ([], ["--revision", "main"]):
        line = _one_line(*_generate(cli, "someorg/custom-code", "--trust-remote-code", *given)[::2])
        assert "'someorg/custom-code'" in line and "--revision COMMIT" in line
        assert ("'main' is a branch or tag" in line) == bool(given)
    # pinned, the load goes on (and here fails only for want of a network)
    line = _one_line(*_generate(cli, "someorg/custom-code", "--trust-remote-code", "--revision", COMMIT)[::2])
    assert "cannot fetch 'someorg/custom-code'" in line


# --- 3. adapters ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tiny_model, tmp_path_factory) -> Path:
    from nlpapp.api import Runtime
    from nlpapp.training.config import TrainConfig

    folder = tmp_path_factory.mktemp("security-adapter")
    data = folder / "gen.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"say the number {i}", "response": f"number {i} is here"}) + "\n"
                            for i in range(8)))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NLPAPP_HOME", str(folder / "home"))
        Runtime.create().train(TrainConfig(task="generation", model=str(tiny_model("causal-lm")), data=[str(data)],
                                           output=str(folder / "adapter"), max_steps=1, batch_size=4, save_every=0,
                                           holdout=0))
    return folder / "adapter"


@pytest.fixture
def adapter(trained, tmp_path, nlpapp_home) -> Path:
    copy = tmp_path / "adapter"
    shutil.copytree(trained, copy)
    return copy


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "nlpapp-adapter.json").read_text())


def _rehash(folder: Path, drop: bool = False) -> None:
    """The manifest as it would be for the files as they are now (or, ``drop``, as written
    before nlpapp recorded hashes)."""
    from nlpapp.runtime.adapters import file_hashes

    manifest = _manifest(folder)
    manifest.pop("files", None)
    if not drop:
        manifest["files"] = file_hashes(folder)
    (folder / "nlpapp-adapter.json").write_text(json.dumps(manifest))


def _run_adapter(cli, folder: Path):
    return cli("run", "generation", "say the number 3", "--adapter", str(folder), "--max-new-tokens", "2")


def test_the_manifest_records_the_sha256_of_the_adapter_files(trained):
    assert _manifest(trained)["files"] == {
        name: hashlib.sha256((trained / name).read_bytes()).hexdigest()
        for name in ("adapter_config.json", "adapter_model.safetensors")}


def test_a_flipped_byte_is_refused_in_one_line_and_an_adapter_without_hashes_still_loads(cli, adapter):
    code, out, err = cli("adapters", "verify", str(adapter))
    assert code == 0 and out.strip() == f"{adapter}: 2 files match the manifest", err
    weights = adapter / "adapter_model.safetensors"
    original = weights.read_bytes()
    weights.write_bytes(original[:-3] + bytes([original[-3] ^ 1]) + original[-2:])
    mismatch = f"{weights} does not match the sha256 recorded in {adapter / 'nlpapp-adapter.json'}"
    assert mismatch in _one_line(*_run_adapter(cli, adapter)[::2])
    assert mismatch in _one_line(*cli("adapters", "verify", str(adapter))[::2])
    weights.write_bytes(original)
    _rehash(adapter, drop=True)  # an adapter trained before nlpapp recorded hashes
    code, out, err = _run_adapter(cli, adapter)
    assert code == 0 and out.strip(), err


def _rewrite_weights(folder: Path, change) -> str:
    """Rewrites adapter_model.safetensors through ``change(tensors) -> key`` and the manifest's
    hashes to match, so only the check against the model can catch it; returns the key."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(folder / "adapter_model.safetensors")
    key = change(tensors)
    save_file(tensors, folder / "adapter_model.safetensors")
    _rehash(folder)
    return key


def _drop_lora_a(tensors):
    key = min(k for k in tensors if "lora_A" in k)
    del tensors[key]
    return key


def _add_key(tensors):
    import torch

    tensors["base_model.model.model.layers.0.mlp.up_proj.lora_A.weight"] = torch.zeros(8, 32)
    return "base_model.model.model.layers.0.mlp.up_proj.lora_A.weight"


def _reshape(tensors):
    import torch

    key = min(k for k in tensors if "lora_B" in k)
    tensors[key] = torch.zeros(tensors[key].shape[0], tensors[key].shape[1] * 2)
    return key


@pytest.mark.parametrize("change, says", [(_drop_lora_a, "missing "), (_add_key, "unexpected "),
                                          (_reshape, "shape mismatch: ")])
def test_adapter_tensors_that_do_not_fit_are_listed_in_one_line(cli, adapter, change, says):
    key = _rewrite_weights(adapter, change)
    line = _one_line(*_run_adapter(cli, adapter)[::2])
    assert f"{adapter / 'adapter_model.safetensors'} does not fit the model" in line
    assert f"{says}{key}" in line


def test_a_refused_adapter_leaves_the_shared_base_model_as_it_was(runtime, adapter, tmp_path):
    base = runtime.models.load(str(_manifest(adapter)["base_model"]["spec"]))
    before = runtime.run("generation", ["say the number 3"], model=base.name, options={"max_new_tokens": 4})
    bad = tmp_path / "bad"
    shutil.copytree(adapter, bad)
    _rewrite_weights(bad, _reshape)
    with pytest.raises(ModelLoadError, match="shape mismatch"):
        runtime.models.load(base.name, adapter=str(bad))
    assert not any("lora" in name for name, _ in base.hf_model.named_modules())  # no LoRA layers left in it
    assert runtime.run("generation", ["say the number 3"], model=base.name, options={"max_new_tokens": 4}) == before
    assert runtime.models.load(base.name, adapter=str(adapter)) is base  # a good adapter still goes on


def test_an_unreadable_adapter_config_or_weights_file_is_named_in_one_line(cli, adapter, tmp_path):
    config = adapter / "adapter_config.json"
    original = config.read_text()
    config.write_text(original[: len(original) // 2])
    _rehash(adapter)
    line = _one_line(*_run_adapter(cli, adapter)[::2])
    assert f"{config} cannot be read" in line
    config.write_text(original)
    weights = adapter / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    _rehash(adapter, drop=True)
    line = _one_line(*_run_adapter(cli, adapter)[::2])
    assert f"{weights} is truncated or corrupt" in line
    config.unlink()
    line = _one_line(*_run_adapter(cli, adapter)[::2])
    assert "has no adapter_config.json" in line


def test_an_adapter_file_linked_from_outside_is_refused(cli, adapter, tmp_path):
    weights = adapter / "adapter_model.safetensors"
    shutil.move(weights, tmp_path / "elsewhere.safetensors")
    weights.symlink_to(tmp_path / "elsewhere.safetensors")
    line = _one_line(*_run_adapter(cli, adapter)[::2])
    assert f"{weights} is a link to {tmp_path / 'elsewhere.safetensors'}, outside {adapter}" in line


def test_every_command_that_loads_a_model_takes_the_opt_in_its_refusal_names(cli, tiny_model, tmp_path):
    """A folder of pickle weights is refused naming --allow-pickle; train and eval take it, as run does."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tmp_path / "pickled"  # transformers 5 saves safetensors only: the pickle is written by hand
    model = AutoModelForCausalLM.from_pretrained(tiny_model("causal-lm"))
    model.config.save_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    AutoTokenizer.from_pretrained(tiny_model("causal-lm")).save_pretrained(folder)
    data = tmp_path / "gen.jsonl"
    data.write_text("".join(f'{{"prompt": "say {i}", "response": "number {i}"}}\n' for i in range(4)))
    commands = {"train": ["train", "text-generation", "--data", str(data), "--output", str(tmp_path / "a"),
                          "--max-steps", "1", "--holdout", "0", "--batch-size", "2", "--no-progress"],
                "eval": ["eval", "text-generation", "--data", str(data), "--max-new-tokens", "2"],
                "run": ["run", "text-generation", "say 1", "--max-new-tokens", "2"]}
    for name, args in commands.items():
        code, _, err = cli(*args, "--model", str(folder))
        assert code == 1 and "pass --allow-pickle" in err and len(err.strip().splitlines()) == 1, (name, err)
        code, _, err = cli(*args, "--model", str(folder), "--allow-pickle")
        assert code == 0, (name, err)
