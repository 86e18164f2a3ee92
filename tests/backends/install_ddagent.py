"""Set-up step of the test suite: install Datadog's test agent into its own cached virtual environment.

Run before pytest (the README's test command and .ci/run do), so that the test run needs no
package index. Without it the Datadog backend tests are skipped, saying so.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ddagent import DDAPM_TEST_AGENT, install  # noqa: E402

if __name__ == "__main__":
    try:
        print(f"{DDAPM_TEST_AGENT}: {install()}")
    except Exception as exc:  # no package index here: the Datadog tests skip and say why, the run goes on
        print(f"{DDAPM_TEST_AGENT} not installed ({type(exc).__name__}: {exc}); the Datadog backend tests will be skipped", file=sys.stderr)
