"""Zero-code (``opentelemetry-instrument python app.py``) and examples, as a new user sets them up.

The slow tests build a virtual environment with only ``micrometrics[openai]`` and
``opentelemetry-distro`` in it (pip, from the configured package index; about 30 s, once per
module), because the defect they pin only shows when the other client libraries are absent.
Without a reachable index they are skipped, saying so.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL_TIMEOUT_S = 300

#: A German customer asks in German; the demo model slips into English on the fifth user turn.
APP = """
    import openai
    from demo_server import DemoServer

    with DemoServer() as srv:
        r = openai.OpenAI(base_url=srv.openai_base_url, api_key="k", max_retries=0).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello, where is my order? It has been a week."}])
    print("ANSWER", r.choices[0].message.content)
"""


def _pip(python: Path, *args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def openai_only_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with micrometrics (this checkout, editable), openai and opentelemetry-distro only."""
    where = tmp_path_factory.mktemp("zero-code-venv")
    venv.EnvBuilder(with_pip=True).create(where / "venv")
    python = where / "venv" / "bin" / "python"
    try:
        probe = _pip(python, "download", "--no-deps", "-q", "-d", str(where / "probe"), "opentelemetry-distro", timeout=120)
    except subprocess.TimeoutExpired:
        pytest.skip("the package index did not answer pip within 120 s: cannot build the one-library environment")
    if probe.returncode != 0:
        pytest.skip(f"the package index is unreachable, cannot build the one-library environment: {probe.stderr.strip()[-300:]}")
    # The index answers: from here on, a failure to install is a failure of ours (e.g. the package metadata).
    out = _pip(python, "install", "-q", "-e", f"{ROOT}[openai]", "opentelemetry-distro", timeout=INSTALL_TIMEOUT_S)
    assert out.returncode == 0, out.stderr[-3000:]
    return python


def _run_in(python: Path, script: str, env: dict[str, str], zero_code: bool) -> subprocess.CompletedProcess:
    # Nothing from the test runner's environment decides what the app sees: no PYTHONPATH, no OTEL_*.
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MICROMETRICS_", "PYTHON"))}
    full_env = {**base, "PYTHONPATH": str(ROOT / "examples"), **env}
    cmd = [str(python.with_name("opentelemetry-instrument")), str(python)] if zero_code else [str(python)]
    return subprocess.run(cmd + ["-c", textwrap.dedent(script)], capture_output=True, text=True, env=full_env, timeout=120)


@pytest.mark.slow
def test_zero_code_traces_openai_when_openai_is_the_only_client_library_installed(openai_only_venv):
    missing = _run_in(openai_only_venv, "import importlib.util as u; print([m for m in ('anthropic', 'chromadb', 'qdrant_client', 'langchain_core') if u.find_spec(m)])", {}, False)
    assert missing.stdout.strip() == "[]", "the environment must hold one client library only"

    env = {"OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none", "OTEL_SERVICE_NAME": "zero-code-app"}
    out = _run_in(openai_only_venv, APP, env, True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "ANSWER Hello" in out.stdout
    # The SDK's console exporter prints each span as JSON on stdout.
    assert '"name": "chat gpt-4o-mini"' in out.stdout, out.stdout[-3000:] + out.stderr[-3000:]
    assert '"gen_ai.provider.name": "openai"' in out.stdout
    assert '"micrometrics.language_match.label"' in out.stdout  # the micro metrics ran too


@pytest.mark.slow
def test_instrument_warns_for_a_requested_library_that_is_not_installed_and_does_not_list_it(openai_only_venv):
    script = """
        import warnings, micrometrics
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            handle = micrometrics.instrument(exporter="none", metrics=[], instrumentations=["openai", "anthropic"])
        print("INSTRUMENTED", handle.instrumentations)
        for w in caught:
            print("WARNING", w.category.__name__, w.message)
    """
    out = _run_in(openai_only_venv, script, {}, False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "INSTRUMENTED ('openai',)" in out.stdout
    (warning,) = [line for line in out.stdout.splitlines() if line.startswith("WARNING")]
    assert "RuntimeWarning" in warning and "'anthropic'" in warning and 'pip install "micrometrics[anthropic]"' in warning


@pytest.mark.slow
@pytest.mark.parametrize(
    "example,missing,command",
    [
        ("multi_provider.py", "anthropic, google-genai, boto3", 'pip install -e ".[openai,anthropic,google-genai,bedrock]"'),
        ("rag_pipeline.py", "chromadb", 'pip install -e ".[chromadb,openai]"'),
    ],
)
def test_an_example_whose_library_is_missing_names_the_extra_to_install(openai_only_venv, example, missing, command):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MICROMETRICS_", "PYTHON", "OPENAI_"))}
    out = subprocess.run([str(openai_only_venv), str(ROOT / "examples" / example)], capture_output=True, text=True, env=base, timeout=120)
    assert out.returncode == 1
    assert out.stderr.strip() == f"{example} needs {missing}, which {'is' if ',' not in missing else 'are'} not installed. From the repository root: {command}"


#: The incident under zero-code, with LanguageMatch made a guard by the operations' config file.
GUARDED_APP = """
    import openai
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from demo_server import DemoServer, _DE_REPLIES

    exporter = InMemorySpanExporter()
    tp = TracerProvider(); tp.add_span_processor(SimpleSpanProcessor(exporter)); trace.set_tracer_provider(tp)
    turns = ["Hallo, ich habe eine Frage zu meiner Bestellung.", "Meine Bestellnummer ist 12345. Wo ist mein Paket?",
             "Warum dauert die Lieferung so lange?", "Kann ich die Lieferadresse noch ändern?", "Danke. Wann bekomme ich mein Geld zurück?"]
    messages = []
    for i, text in enumerate(turns):
        if i:
            messages.append({"role": "assistant", "content": _DE_REPLIES[i - 1]})
        messages.append({"role": "user", "content": text})
    with DemoServer() as srv:
        r = openai.OpenAI(base_url=srv.openai_base_url, api_key="k", max_retries=0).chat.completions.create(
            model="gpt-4o-mini", messages=messages)
    print("GERMAN" if r.choices[0].message.content == _DE_REPLIES[4] else "NOT GERMAN: " + r.choices[0].message.content)
    from micrometrics import runtime
    runtime.current().flush(10)  # the monitor thread ends the spans after the call returned
    spans = sorted(exporter.get_finished_spans(), key=lambda s: s.start_time)
    print([(s.name, s.attributes.get("micrometrics.language_match.label")) for s in spans])
"""


def test_zero_code_guard_decides_the_very_first_call(tmp_path):
    config = tmp_path / "micrometrics.toml"
    config.write_text('[metrics.language_match]\nmode = "guard"\n')
    tool = Path(sys.executable).with_name("opentelemetry-instrument")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MICROMETRICS_"))},
        "PYTHONPATH": os.pathsep.join([str(ROOT / "examples"), os.environ.get("PYTHONPATH", "")]),
        "MICROMETRICS_CONFIG": str(config),
        "OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none",
    }
    out = subprocess.run([str(tool), sys.executable, "-c", textwrap.dedent(GUARDED_APP)], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    # The profiles were loaded when the instrumentor loaded, not inside the first guard (which then timed out).
    assert lines[0] == "GERMAN", out.stdout
    assert lines[1] == "[('chat gpt-4o-mini', 'mismatch'), ('chat gpt-4o-mini', 'match')]"
