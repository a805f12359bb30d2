"""The llamacpp backend as nlpapp sees it: registered through its entry point, chosen with
--backend, loading only what it can run and refusing the rest in one line."""

import importlib.metadata
import subprocess
import sys

import pytest

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install -e plugins/llamacpp)")
pytest.importorskip("nlpapp_llamacpp", reason="the plugin is not installed (pip install -e plugins/llamacpp)")

import nlpapp  # noqa: E402
from nlpapp import InputError, LoadOptions, ModelLoadError, UnsupportedModelError  # noqa: E402
from nlpapp.types import GenerationParams  # noqa: E402

import nlpapp_llamacpp  # noqa: E402

LLAMACPP = LoadOptions(backend="llamacpp")


def test_registered_through_its_entry_point(runtime):
    [entry] = [e for e in importlib.metadata.entry_points(group="nlpapp") if e.name == "llamacpp"]
    assert entry.value == "nlpapp_llamacpp"
    assert runtime.registries.backends.get("llamacpp").file_suffixes == (".gguf",)
    assert runtime.registries.backends.plugin_of("llamacpp") == "llamacpp"


def test_light_module_does_not_import_llama_cpp():
    # nlpapp --help imports every plugin's module: compiling or loading llama.cpp there would slow every command
    code = "import sys, nlpapp_llamacpp; print('llama_cpp' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_cli_runs_generation_on_llama_cpp(cli, smollm2):
    prompt = "What is the capital of France?"
    code, out, err = cli("run", "generation", "--model", "smollm2", "--backend", "llamacpp",
                         "--max-new-tokens", "12", "--repetition-penalty", "1.0", prompt)
    assert code == 0, err
    # the PyTorch path says "The capital of France is Paris." here; llama.cpp's Q4_1 arithmetic answers otherwise
    expected = smollm2.generate([prompt], GenerationParams(max_new_tokens=12))[0]
    assert out.strip() == expected.strip() and expected


def test_cli_refuses_a_dtype_in_one_line(cli, smollm2_file):
    code, _, err = cli("run", "generation", "--model", "smollm2", "--backend", "llamacpp", "--dtype", "float16", "Hi")
    assert code == 1
    assert "GGUF file's own tensor types" in err and "Traceback" not in err


def test_answers_only_for_its_backend_and_gguf_files(smollm2_file, tmp_path):
    assert nlpapp_llamacpp.load_model(path=smollm2_file, head=None, options=LoadOptions()) is None
    assert nlpapp_llamacpp.load_model(path=smollm2_file, head=None, options=LoadOptions(backend="torch")) is None
    assert nlpapp_llamacpp.load_model(path=str(tmp_path), head=None, options=LLAMACPP) is None
    model = nlpapp_llamacpp.load_model(path=smollm2_file, head="causal-lm", options=LLAMACPP)
    assert isinstance(model, nlpapp.Model) and model.head == "causal-lm"


def test_a_folder_with_the_llamacpp_backend_is_refused_by_name(tiny_model, nlpapp_home):
    runtime = nlpapp.Runtime.create(backend="llamacpp")
    with pytest.raises(ModelLoadError, match="backend 'llamacpp' cannot load"):
        runtime.models.load(str(tiny_model("causal-lm")))


@pytest.mark.parametrize("head", ["sequence-classification", "encoder", "seq2seq-lm"])
def test_refuses_other_heads(smollm2_file, head):
    with pytest.raises(UnsupportedModelError, match="causal language models only"):
        nlpapp_llamacpp.load_model(path=smollm2_file, head=head, options=LLAMACPP)


def test_refuses_a_dtype(smollm2_file):
    with pytest.raises(ModelLoadError, match="--dtype bfloat16: .*own tensor types"):
        nlpapp_llamacpp.load_model(path=smollm2_file, head=None, options=LoadOptions(backend="llamacpp",
                                                                                     dtype="bfloat16"))


def test_refuses_cuda_without_a_gpu_build(smollm2_file):
    import llama_cpp

    if llama_cpp.llama_supports_gpu_offload():
        pytest.skip("this llama-cpp-python was built with GPU support")
    for device in ("cuda", "cuda:1"):
        with pytest.raises(ModelLoadError, match="built without GPU support"):
            nlpapp_llamacpp.load_model(path=smollm2_file, head=None,
                                       options=LoadOptions(backend="llamacpp", device=device))


def test_refuses_settings_it_has_no_sampler_for(smollm2):
    with pytest.raises(UnsupportedModelError, match="no-repeat-n-gram"):
        smollm2.generate(["Hi"], GenerationParams(max_new_tokens=4, no_repeat_ngram_size=3))
    with pytest.raises(UnsupportedModelError, match="forced_bos_token_id"):
        smollm2.generate(["Hi"], GenerationParams(max_new_tokens=4, extra={"forced_bos_token_id": 5}))


def test_cannot_be_trained_or_take_adapters(smollm2):
    with pytest.raises(UnsupportedModelError, match="cannot be trained"):
        smollm2.trainable_module()
    with pytest.raises(UnsupportedModelError):
        smollm2.generate_each(["Hi"], GenerationParams(max_new_tokens=2), adapters=["some-adapter"])


def test_reports_the_file_and_its_window(smollm2):
    assert smollm2.dtype == "Q4_1"
    assert smollm2.model_type == "llama"
    assert smollm2.max_input_tokens == 8192  # SmolLM2's trained context, as transformers reports it
    assert smollm2.has_chat_template and smollm2.device == "cpu"


def test_counts_and_truncates_tokens(smollm2):
    text = "The quick brown fox jumps over the lazy dog. " * 20
    [count] = smollm2.count_tokens([text])
    assert smollm2.count_tokens(["Hello world", ""]) == [2, 0]
    cut = smollm2.truncate(text, 7)
    assert smollm2.count_tokens([cut]) == [7] and text.startswith(cut)
    assert smollm2.truncate(text, count) == text


def test_a_prompt_that_overflows_the_window_is_refused(smollm2):
    with pytest.raises(InputError, match="exceeds the model's window of 8192"):
        smollm2.generate(["word " * 8190], GenerationParams(max_new_tokens=16), chat=False)
