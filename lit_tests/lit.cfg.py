# -*- Python -*-
# lit configuration for ember's FileCheck tests: `lit lit_tests -q` from the repository root.
#
# RUN lines use `ember-opt`, `filecheck` (or `FileCheck`, the same Python filecheck), lit's
# built-in `not` (inverts an exit status) and `%python` (the Python running lit). Tools resolve
# next to the Python that runs lit first, so a virtual environment's console scripts win over
# whatever else is on PATH.
import os
import shutil
import sys

import lit.formats

config.name = "ember"
# lit's internal shell (execute_external=True is an error from lit 23 on); it has `not` built in.
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir"]
config.excludes = ["Output", "lit.cfg.py", "lit.site.cfg.py"]
config.test_source_root = os.path.dirname(os.path.abspath(__file__))
config.test_exec_root = config.test_source_root

_bindir = os.path.dirname(sys.executable)


def _tool(name, module=None):
    found = shutil.which(name, path=_bindir) or shutil.which(name)
    if found:
        return found
    if module:
        return f'"{sys.executable}" -m {module}'
    lit_config.fatal(f"'{name}' not found; install the test extras: pip install -e .[test]")


# Whole words only, so `ember-opt` inside a path such as lit_tests/ember-opt/x.mlir is kept.
_word = r"(?<![\w/.-]){}(?![\w/.-])"
config.substitutions.append((_word.format("ember-opt"),
                             _tool("ember-opt", "ember.tools.ember_opt")))
config.substitutions.append((_word.format("FileCheck"), _tool("filecheck")))
config.substitutions.append((_word.format("filecheck"), _tool("filecheck")))
config.substitutions.append(("%python", f'"{sys.executable}"'))

# Python's own variables (a virtual environment, PYTHONPATH for a source checkout) reach tests.
for var in ("PYTHONPATH", "VIRTUAL_ENV", "HOME"):
    if var in os.environ:
        config.environment[var] = os.environ[var]
