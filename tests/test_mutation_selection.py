"""The mutation run's test selection follows the code: every test module that imports the
decision core (castslice/functions/) is in `[tool.mutmut]`'s selection, or named here with
why it cannot be (each would run once per mutant). A new module of tests cannot be left out
silently, as test_memory.py once was."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTSIDE = {
    "tests/test_apiserver_webhook.py": "a real kube-apiserver per run (the API-server tier)",
    "tests/test_recommend.py": "a real Prometheus per run",
    "tests/test_http.py": "real gunicorn servers per run",
    "tests/test_docs.py": "reads the annotations' names for the reference pages only",
    "tests/test_preview.py": "captures through a moto S3 server and a 20,000-event memory "
                             "measure per run (the decision's answers are test_golden_events')",
}


def test_every_module_testing_the_decision_core_is_in_the_mutation_run():
    selection = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"][
        "pytest_add_cli_args_test_selection"]
    chosen = {arg for arg in selection if arg.endswith(".py")}
    importing = {str(path.relative_to(ROOT)) for path in (ROOT / "tests").glob("test_*.py")
                 if re.search(r"^\s*(from|import) castslice\.functions", path.read_text(), re.M)}
    assert importing - chosen - set(OUTSIDE) == set(), "add them to [tool.mutmut]"
    assert set(OUTSIDE) <= importing, "an excluded module no longer imports the core"
    assert all((ROOT / name).exists() for name in chosen)
